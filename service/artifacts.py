"""Content-addressed artifact storage: uploads stream to disk, are verified, sniffed, then committed.

An upload never sits in memory: each chunk is hashed and written as it arrives, and the file only
appears under its digest after the size and sha256 match. The format is sniffed from the bytes, and
pickles (including torch.save archives) are refused without being read as anything but bytes.

An artifact is visible only to the principals that uploaded it (and to admins). Bytes another principal
stored are not "already there" for a caller: it must send them all, so that knowing a digest never
grants the data behind it; the verified upload then makes the caller an owner of the shared file.

Deleting forgets one owner's record; the file goes only with the last record, once no unfinished audit reads
it. The record goes first, then the file: a crash in between leaves a file no row names, which the next
start-up removes (retention.remove_orphaned_artifacts), never a row whose file is gone.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import struct
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import grpc

from effcap.capacity.graphs.onnx_wire import OnnxLimits, WireError, looks_like_onnx, scan_onnx
from effcap.capacity.json_values import load_json
from effcap.capacity.programs import program_refusal
from effcap.protos.v1 import artifact_pb2, audit_pb2
from effcap.service.auth.principal import Principal
from effcap.service.errors import ApiError, invalid_argument, not_found
from effcap.service.store import ArtifactDeletion, AuditStore, timestamp

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
Format = artifact_pb2.ArtifactFormat


def check_digest(digest: artifact_pb2.Digest, field: str, max_bytes: int) -> None:
    if not SHA256_PATTERN.fullmatch(digest.sha256):  # match() would let a trailing newline through
        raise invalid_argument(f"{field}.sha256", "must be 64 lowercase hexadecimal characters", "INVALID_DIGEST")
    if digest.size_bytes <= 0:
        raise invalid_argument(f"{field}.size_bytes", "must be positive", "INVALID_DIGEST")
    if digest.size_bytes > max_bytes:
        raise invalid_argument(
            f"{field}.size_bytes", f"{digest.size_bytes} bytes exceeds the server's limit of {max_bytes} bytes", "ARTIFACT_TOO_LARGE"
        )


def request_inputs(request: audit_pb2.CreateAuditRequest) -> dict[str, str]:
    """The sha256 of every artifact an audit's request names, by the request field that names it."""
    inputs = {"model": request.model.sha256, "initial_model": request.initial_model.sha256}
    if request.dataset.WhichOneof("source") == "artifact":
        inputs["dataset.artifact"] = request.dataset.artifact.sha256
    return {field: sha256 for field, sha256 in inputs.items() if sha256}


def request_digests(request: audit_pb2.CreateAuditRequest) -> set[str]:
    """The sha256 of every artifact an audit's request names."""
    return set(request_inputs(request).values())


class ArtifactStore:
    def __init__(self, root: Path, store: AuditStore, max_bytes: int, onnx_limits: OnnxLimits = OnnxLimits()) -> None:
        self._root = root
        # Held while a file is committed under its digest with its record, or removed with its last record:
        # an upload of the same bytes racing a deletion then never ends with a record whose file is gone.
        self.file_changes = threading.Lock()
        self.onnx_limits = onnx_limits
        self._incoming = root / "incoming"
        self._incoming.mkdir(parents=True, exist_ok=True)
        self._store = store
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        return self._root / sha256[:2] / sha256

    def get(self, digest: artifact_pb2.Digest, principal: Principal) -> artifact_pb2.Artifact | None:
        """The artifact if it is stored and `principal` may see it."""
        row = self._store.get_artifact(digest.sha256, principal.owner_filter)
        if row is None or row[0] != digest.size_bytes or not self.path(digest.sha256).is_file():
            return None
        size, fmt, created = row
        return artifact_pb2.Artifact(digest=digest, format=fmt, create_time=timestamp(created))

    def require(self, digest: artifact_pb2.Digest, field: str, principal: Principal) -> tuple[artifact_pb2.Artifact, Path]:
        """The stored artifact and its path, or NOT_FOUND naming the request field (also when another principal owns it)."""
        check_digest(digest, field, self.max_bytes)
        artifact = self.get(digest, principal)
        if artifact is None:
            raise not_found("artifact", f"sha256:{digest.sha256} ({digest.size_bytes} bytes)", "ARTIFACT_NOT_FOUND", field=field)
        return artifact, self.path(digest.sha256)

    def files(self) -> Iterator[Path]:
        """Every committed file (incoming/ holds uploads in progress, not these)."""
        for folder in self._root.iterdir():
            if folder.is_dir() and len(folder.name) == 2 and folder.name != self._incoming.name:
                yield from (path for path in folder.iterdir() if SHA256_PATTERN.fullmatch(path.name))

    def forget(
        self, sha256: str, principal: Principal, leased_by: Callable[[str], AbstractContextManager[frozenset[str]]]
    ) -> ArtifactDeletion:
        """Delete `principal`'s record of an artifact, and its file once it is no one's (store.delete_artifact_owner).

        `leased_by` (retention.ArtifactLeases.holders) names the principals whose CreateAudit is validating the
        digest, and keeps new leases out until the deletion is stored: while `principal`'s own is held the record
        stays (the audit about to be stored reads it); while another's is, the file stays for that audit."""
        reads = lambda request: sha256 in request_digests(request)  # noqa: E731
        with self.file_changes, leased_by(sha256) as creators:
            deletion = self._store.delete_artifact_owner(
                sha256, principal.name, reads, drop_unheld=not creators, owner_creating=principal.name in creators
            )
            if deletion.bytes_unreferenced:
                self.path(sha256).unlink(missing_ok=True)
        return deletion

    def receive(
        self,
        requests: Iterator[artifact_pb2.UploadArtifactRequest],
        principal: Principal,
        admit: Callable[[artifact_pb2.Digest], AbstractContextManager[object]] = lambda digest: nullcontext(),
    ) -> tuple[artifact_pb2.Artifact, bool]:
        """Store an upload as `principal`'s: the artifact, and whether `principal` did not hold it before.

        `admit` sees the declared digest of an artifact new to `principal` before a byte is written, and the
        context it returns lasts until the artifact is recorded (quotas: the bytes are reserved meanwhile)."""
        first = next(requests, None)
        if first is None or first.WhichOneof("payload") != "header":
            raise invalid_argument("header", "the first message of an upload must carry the header", "UPLOAD_HEADER_MISSING")
        digest = first.header.digest
        check_digest(digest, "header.digest", self.max_bytes)
        existing = self.get(digest, principal)
        if existing is not None:
            return existing, False
        with admit(digest):
            partial = self._incoming / uuid.uuid4().hex
            try:
                self._write_verified(requests, digest, partial)
                fmt = sniff_format(partial, self.onnx_limits)
                final = self.path(digest.sha256)
                final.parent.mkdir(exist_ok=True)
                with self.file_changes:
                    os.replace(partial, final)
                    created, added = self._store.put_artifact(digest.sha256, digest.size_bytes, fmt, principal.name)
            finally:
                partial.unlink(missing_ok=True)
        return artifact_pb2.Artifact(digest=digest, format=fmt, create_time=timestamp(created)), added

    @staticmethod
    def _write_verified(requests: Iterator[artifact_pb2.UploadArtifactRequest], digest: artifact_pb2.Digest, partial: Path) -> None:
        hasher = hashlib.sha256()
        received = 0
        with partial.open("wb") as out:
            for request in requests:
                if request.WhichOneof("payload") != "chunk":
                    raise invalid_argument("header", "only the first message may carry a header", "UPLOAD_HEADER_REPEATED")
                received += len(request.chunk)
                if received > digest.size_bytes:
                    raise invalid_argument("chunk", f"more bytes than the declared {digest.size_bytes}", "SIZE_MISMATCH")
                hasher.update(request.chunk)
                out.write(request.chunk)
            out.flush()
            os.fsync(out.fileno())
        if received != digest.size_bytes:
            raise invalid_argument("header.digest.size_bytes", f"declared {digest.size_bytes} bytes but received {received}", "SIZE_MISMATCH")
        if hasher.hexdigest() != digest.sha256:
            raise invalid_argument("header.digest.sha256", f"declared {digest.sha256} but the bytes hash to {hasher.hexdigest()}", "DIGEST_MISMATCH")


def sniff_format(path: Path, onnx_limits: OnnxLimits = OnnxLimits()) -> int:
    """SAFETENSORS, NPZ or ONNX from the bytes; pickles and anything else are refused (ApiError).

    An ONNX file's outline (node count, weight bytes, no external data) is checked here, before
    it is stored; its operators and the translation are checked at CreateAudit."""
    refusal = program_refusal(path)
    if refusal is not None:
        raise invalid_argument("chunk", refusal[1], refusal[0])
    with path.open("rb") as handle:
        head = handle.read(9)
        size = path.stat().st_size
        if head.startswith(b"PK\x03\x04"):
            return _sniff_zip(path)
        if len(head) == 9 and head[8:9] == b"{":
            (header_length,) = struct.unpack("<Q", head[:8])
            if header_length > min(MAX_SAFETENSORS_HEADER, size - 8):
                too_long = header_length > size - 8
                what = f"the file has {size} bytes" if too_long else f"at most {MAX_SAFETENSORS_HEADER} bytes are read"
                message = f"a safetensors header that claims {header_length} bytes, but {what}"
                raise invalid_argument("chunk", message, "SAFETENSORS_HEADER_TOO_LARGE")
            handle.seek(8)
            try:
                load_json(handle.read(header_length).decode(), "chunk", "INVALID_SAFETENSORS_HEADER")
            except UnicodeDecodeError:
                message = "a safetensors header that is not UTF-8"
                raise invalid_argument("chunk", message, "INVALID_SAFETENSORS_HEADER") from None
            return Format.ARTIFACT_FORMAT_SAFETENSORS
    if looks_like_onnx(head):
        try:
            with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                scan_onnx(mapped, onnx_limits)
        except WireError as error:
            raise invalid_argument("chunk", f"not an ONNX model effcap accepts: {error}", "INVALID_ONNX") from None
        return Format.ARTIFACT_FORMAT_ONNX
    raise ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNSUPPORTED_FORMAT",
        "artifact: neither safetensors (checkpoints, datasets), .npz (datasets) nor ONNX (models); image folders, MNIST IDX, "
        "CIFAR binaries and Parquet/Arrow tables become a dataset with `effcap data pack SRC -o data.safetensors`",
        field="chunk",
    )


def _sniff_zip(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise invalid_argument("chunk", f"a corrupt zip archive: {exc}", "UNSUPPORTED_FORMAT") from None
    if names and all(name.endswith(".npy") for name in names):
        return Format.ARTIFACT_FORMAT_NPZ
    raise invalid_argument("chunk", "a zip archive that is not an .npz of .npy arrays", "UNSUPPORTED_FORMAT")
