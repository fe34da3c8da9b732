"""Format sniffing of uploads: safetensors and npz pass; pickles and anything else are refused."""

import io
import pickle
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from effcap.protos.v1 import artifact_pb2
from effcap.service.artifacts import sniff_format
from effcap.service.errors import ApiError


def test_safetensors_and_npz_are_recognised(tmp_path):
    save_file({"w": torch.zeros(3)}, str(tmp_path / "m.safetensors"))
    np.savez(tmp_path / "d.npz", x_train=np.zeros((2, 2)), y_train=np.zeros(2, np.int64))
    assert sniff_format(tmp_path / "m.safetensors") == artifact_pb2.ARTIFACT_FORMAT_SAFETENSORS
    assert sniff_format(tmp_path / "d.npz") == artifact_pb2.ARTIFACT_FORMAT_NPZ


@pytest.mark.parametrize("protocol", [0, 1, 2, 4, 5])
def test_pickles_are_refused(tmp_path, protocol):
    path = tmp_path / "p"
    path.write_bytes(pickle.dumps({"w": [1, 2, 3]}, protocol=protocol))
    with pytest.raises(ApiError) as info:
        sniff_format(path)
    assert info.value.reason == "PICKLE_REFUSED" and "safetensors" in info.value.message


def test_torch_save_archives_are_refused_as_pickles(tmp_path):
    torch.save({"w": torch.zeros(3)}, tmp_path / "model.pt")
    with pytest.raises(ApiError) as info:
        sniff_format(tmp_path / "model.pt")
    assert info.value.reason == "PICKLE_REFUSED"


def test_other_bytes_and_other_zips_are_refused(tmp_path):
    (tmp_path / "text").write_bytes(b"hello world, not a model")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hi")
    (tmp_path / "zip").write_bytes(buffer.getvalue())
    for name in ("text", "zip"):
        with pytest.raises(ApiError) as info:
            sniff_format(tmp_path / name)
        assert info.value.reason == "UNSUPPORTED_FORMAT"


def test_a_large_headerless_pickle_is_refused_from_its_first_mebibyte(tmp_path):
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(list(range(400_000)), protocol=0))  # 2.6 MB of protocol-0 opcodes
    with pytest.raises(ApiError) as info:
        sniff_format(path)
    assert info.value.reason == "PICKLE_REFUSED"


def test_text_that_starts_like_a_pickle_opcode_is_not_called_a_pickle(tmp_path):
    (tmp_path / "notes").write_bytes(b"(see the attached model).")
    with pytest.raises(ApiError) as info:
        sniff_format(tmp_path / "notes")
    assert info.value.reason == "UNSUPPORTED_FORMAT"


def _program_files(tmp_path):
    import warnings

    model = torch.nn.Linear(3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model), str(tmp_path / "script.pt"))
    torch.export.save(torch.export.export(model, (torch.randn(1, 3),)), str(tmp_path / "exported.pt2"))
    return {"script.pt": "TorchScript", "exported.pt2": "torch.export"}


def test_programs_are_refused_at_upload_and_by_the_library_with_the_onnx_export_call(tmp_path):
    from effcap.capacity.checkpoint import load_checkpoint
    from effcap.capacity.errors import InputError

    for name, kind in _program_files(tmp_path).items():
        with pytest.raises(ApiError) as upload:
            sniff_format(tmp_path / name)
        with pytest.raises(InputError) as local:  # effcap audit --local reads files without the server
            load_checkpoint(tmp_path / name)
        for reason, message in ((upload.value.reason, upload.value.message), (local.value.reason, local.value.message)):
            assert reason == "PROGRAM_REFUSED" and kind in message and "torch.onnx.export" in message


def test_a_safetensors_file_whose_length_looks_like_a_pickle_header_is_not_a_pickle(tmp_path):
    """The header length is the first 8 bytes: 0x80 0x02 ... is a 640-byte header, not pickle protocol 2."""
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={"pad": "x" * 1000})
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[:8], "little")
    padded_length = 0x0280 + 0x10000 * ((length >> 16) + 1)  # first bytes 0x80 0x02, longer than the real header
    data[:8] = padded_length.to_bytes(8, "little")
    data[8 + length : 8 + length] = b" " * (padded_length - length)  # JSON allows trailing spaces
    path.write_bytes(bytes(data))
    assert sniff_format(path) == artifact_pb2.ARTIFACT_FORMAT_SAFETENSORS


def test_a_raw_dataset_format_is_pointed_to_effcap_data_pack(tmp_path):
    """An MNIST IDX file uploaded as it was downloaded: the error says how to make it a dataset the server reads."""
    (tmp_path / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(4))
    with pytest.raises(ApiError) as info:
        sniff_format(tmp_path / "train-images-idx3-ubyte")
    assert info.value.reason == "UNSUPPORTED_FORMAT" and "effcap data pack SRC -o data.safetensors" in info.value.message
