"""`effcap data pack` as a command: light imports, the extra it asks for, options that do not apply, exit codes."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np

from .packing import pack, refused
from .test_pack_idx import write_mnist

CLI = [sys.executable, "-m", "effcap.clients.cli"]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_cli_parser_imports_neither_numpy_nor_torch():
    """The light install (no effcap[data], no effcap[server]) must still start the CLI."""
    result = run_python(
        "import sys; from effcap.clients.cli import _parser; _parser(); "
        "print(sorted({'numpy', 'torch', 'PIL', 'pyarrow'} & set(sys.modules)))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_pack_never_imports_torch(tmp_path):
    write_mnist(tmp_path / "mnist")
    code = (
        "import sys; from effcap.clients.cli import main; "
        f"code = main(['data', 'pack', {str(tmp_path / 'mnist')!r}, '-o', {str(tmp_path / 'm.safetensors')!r}]); "
        "print(code, 'torch' in sys.modules)"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 False"


def test_a_missing_dependency_names_the_extra_to_install(tmp_path):
    """pyarrow made unimportable (sys.modules[name] = None is how Python marks a module missing)."""
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['PIL'] = None; from effcap.clients.cli import main; "
        f"sys.exit(main(['data', 'pack', {str(tmp_path / 't.parquet')!r}, '-o', {str(tmp_path / 'o.safetensors')!r}]))"
    )
    result = run_python(code)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert (
        "needs Pillow, pyarrow" in message
        and "pip install 'effcap[data]'" in message
        and "[DEPENDENCY_MISSING]" in message
    )


def test_a_malformed_source_exits_2_without_a_traceback_from_a_real_process(tmp_path):
    root = tmp_path / "mnist"
    write_mnist(root, gz=False, test=False)
    (root / "train-images-idx3-ubyte").write_bytes(b"\x08\x03\x00\x00" + bytes(100))
    result = subprocess.run(
        [*CLI, "data", "pack", str(root), "-o", str(tmp_path / "o.safetensors")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "[IDX_BAD_MAGIC]" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.safetensors").exists()


def test_options_that_do_not_apply_to_the_format_are_refused(capsys, tmp_path):
    write_mnist(tmp_path / "mnist")
    error = refused(capsys, tmp_path / "mnist", tmp_path, "OPTION_NOT_APPLICABLE", "--test", str(tmp_path))
    assert "--test: applies to image-folder and parquet sources, not idx" in error
    error = refused(capsys, tmp_path / "mnist", tmp_path, "OPTION_NOT_APPLICABLE", "--cifar100-labels", "coarse")
    assert "not idx" in error


def test_sources_that_are_not_datasets_are_named(capsys, tmp_path):
    refused(capsys, tmp_path / "nowhere", tmp_path, "SOURCE_MISSING")
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b")
    assert "extract it first" in refused(capsys, tmp_path / "cifar-10-binary.tar.gz", tmp_path, "SOURCE_ARCHIVE")
    (tmp_path / "data.pkl").write_bytes(pickle.dumps({"x": [1, 2]}))
    assert "never unpickled" in refused(capsys, tmp_path / "data.pkl", tmp_path, "PICKLE_REFUSED")
    np.save(tmp_path / "x.npy", np.zeros(3))
    refused(capsys, tmp_path / "x.npy", tmp_path, "SOURCE_FORMAT")


def test_an_output_that_cannot_be_written_is_refused_before_reading(capsys, tmp_path):
    write_mnist(tmp_path / "mnist")
    run = pack(capsys, tmp_path / "mnist", tmp_path / "missing-folder" / "o.safetensors")
    assert run.code == 2 and "[OUTPUT_UNWRITABLE]" in run.stderr and "does not exist" in run.stderr
    run = pack(capsys, tmp_path / "mnist", tmp_path)
    assert run.code == 2 and "is a folder" in run.stderr


def test_the_packed_file_gets_the_usual_permissions_and_no_partial_file_stays(capsys, tmp_path):
    """safetensors writes through a private temporary file; a dataset is meant to be shared like any other file."""
    write_mnist(tmp_path / "mnist")
    run = pack(capsys, tmp_path / "mnist", tmp_path / "m.safetensors")
    assert run.code == 0, run.stderr
    umask = os.umask(0)
    os.umask(umask)
    assert run.path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "mnist"]
