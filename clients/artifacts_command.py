"""`effcap artifacts delete`: forget an upload of the caller's on a server (DeleteArtifact).

An artifact is named by the file it was uploaded from (hashed here, as `effcap audit` hashes it) or by its
digest as reports and `effcap admin log` show it: `sha256:HEX` or bare HEX.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from effcap.clients.errors import EffcapError

if TYPE_CHECKING:
    from effcap.clients.sdk import EffcapClient
    from effcap.protos.v1 import artifact_pb2

EXIT_OK = 0
DEFAULT_SERVER = "127.0.0.1:50051"
DIGEST_TEXT = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


def add_artifacts_command(
    commands: argparse._SubParsersAction,
    add_connection: Callable[[argparse.ArgumentParser], None],
    connect: Callable[[argparse.Namespace], EffcapClient],
) -> None:
    """Register `effcap artifacts`; `add_connection` adds the CLI's --server/--token/TLS options, `connect` opens
    a client from them."""
    artifacts = commands.add_parser("artifacts", help="the files you uploaded to a server")
    artifact_commands = artifacts.add_subparsers(required=True, metavar="ARTIFACTS_COMMAND")
    delete = artifact_commands.add_parser(
        "delete",
        help="forget an upload of yours (refused while an audit of yours that reads it is queued or running)",
    )
    delete.add_argument("artifact", metavar="FILE_OR_DIGEST", help="the uploaded file, or sha256:HEX")
    delete.add_argument("--server", default=DEFAULT_SERVER, help=f"server address (default {DEFAULT_SERVER})")
    add_connection(delete)
    delete.set_defaults(handler=_delete, connect=connect)


def artifact_digest(text: str) -> artifact_pb2.Digest:
    """The digest of an existing file, else of `sha256:HEX` / HEX (size 0: the server matches any size)."""
    from effcap.clients.sdk import file_digest
    from effcap.protos.v1 import artifact_pb2

    path = Path(text)
    if path.is_file():
        return file_digest(path)
    match = DIGEST_TEXT.fullmatch(text.strip())
    if match is None:
        message = f"{text}: neither a file nor a digest (sha256:HEX, 64 hexadecimal characters)"
        raise EffcapError(message, "INVALID_ARGUMENT", field="artifact")
    return artifact_pb2.Digest(sha256=match.group(1).lower())


def _delete(args: argparse.Namespace, console: Console) -> int:
    digest = artifact_digest(args.artifact)
    with args.connect(args) as client:
        client.delete_artifact(digest)
    sys.stdout.write(f"deleted sha256:{digest.sha256}\n")
    return EXIT_OK
