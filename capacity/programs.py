"""Files that are programs — pickles, TorchScript and torch.export archives — recognised by their bytes and refused.

Loading any of them runs or unpickles code (PyTorch's own security policy calls them programs), so
effcap never does. The server refuses them at upload and the library (`effcap audit --local`) when
asked to load one as a checkpoint; both say how to export the network instead, with one message.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

from effcap.capacity.graphs.export_call import ONNX_EXPORT_CALL

# How protocol 0/1 pickles begin: MARK, EMPTY_LIST/DICT/TUPLE, GLOBAL, INT, LONG, FLOAT, STRING, UNICODE, NONE.
OLD_PICKLE_FIRST_OPCODES = frozenset(bytes([c]) for c in b"(]})cILFSVN")
OLD_PICKLE_SCAN_BYTES = 1 << 20
OLD_PICKLE_MIN_OPCODES = 16
PICKLE_MESSAGE = (
    "the file is a pickle (e.g. torch.save); pickles can run code and are never loaded. "
    "Save weights with safetensors.torch.save_file(model.state_dict(), path), or the whole network as ONNX "
    f"({ONNX_EXPORT_CALL}), "
    "and datasets with numpy.savez or `effcap data pack`"
)


def program_refusal(path: Path | str) -> tuple[str, str] | None:
    """(reason, message) when the file is a program, else None. Reads the first byte and a zip's names only."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    # Pickle protocol 2+ (pickle.dump, legacy torch.save) starts \x80 <protocol>; a safetensors file's
    # 9th byte is the '{' of its header, whatever its length's first bytes are.
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") and head[8:9] != b"{":
        return "PICKLE_REFUSED", PICKLE_MESSAGE
    if head[:1] in OLD_PICKLE_FIRST_OPCODES and _is_headerless_pickle(path):
        return "PICKLE_REFUSED", PICKLE_MESSAGE
    if not head.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return None
    if any("/code/" in name or name.endswith("constants.pkl") for name in names):
        return "PROGRAM_REFUSED", _program_message("a TorchScript archive (torch.jit.save)")
    if any(name.endswith("/archive_format") or name.endswith("/models/model.json") for name in names):
        return "PROGRAM_REFUSED", _program_message("a torch.export archive (.pt2)")
    if any(name.endswith(".pkl") or "/data/" in name for name in names):
        return "PICKLE_REFUSED", PICKLE_MESSAGE
    return None


def _is_headerless_pickle(path: Path | str) -> bool:
    """Protocols 0 and 1 carry no \\x80 header: a file is one when its first bytes parse as pickle opcodes
    (pickletools only decodes them; nothing is executed) up to a STOP that ends the file, or through the
    whole scanned prefix of a larger file."""
    with open(path, "rb") as handle:
        scanned = handle.read(OLD_PICKLE_SCAN_BYTES)
        size = handle.seek(0, 2)
    opcodes = 0
    try:
        for opcode, _argument, position in pickletools.genops(io.BytesIO(scanned)):
            opcodes += 1
            if opcode.name == "STOP":
                return position == size - 1 and opcodes > 1
    except ValueError:  # not a pickle, or one cut off where the scan ends
        return size > len(scanned) and opcodes >= OLD_PICKLE_MIN_OPCODES
    return False


def _program_message(what: str) -> str:
    return (
        f"the file is {what}: a program, which loading would unpickle; it is never loaded. "
        f"Export the network as ONNX instead: {ONNX_EXPORT_CALL}"
    )
