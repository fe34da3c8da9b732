"""The server's TLS set-up: its certificate and key, and optionally a CA that client certificates must chain to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


@dataclass(frozen=True)
class ServerTls:
    cert: Path
    key: Path
    # Given: mutual TLS. Every client must present a certificate this CA signed; its subject is the principal.
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        try:
            pair = (self.key.read_bytes(), self.cert.read_bytes())
            client_ca = self.client_ca.read_bytes() if self.client_ca is not None else None
        except OSError as error:
            raise SystemExit(f"cannot read a TLS file: {error.filename}: {error.strerror}") from None
        return grpc.ssl_server_credentials(
            [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
        )
