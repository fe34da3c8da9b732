"""`effcap health`: ask a server's standard gRPC health service (grpc.health.v1) whether it is serving.

Container HEALTHCHECKs and Kubernetes exec probes run it beside the server. The kubelet's own `grpc:` probe
speaks plaintext only, and the deployed server speaks TLS, so the probe needs a client that takes a CA
certificate (and, where the certificate is not issued for the address the probe dials, a server name to check
it against). The health service needs no API key, so this command takes none.

Exit codes follow the CLI's: 0 SERVING; 1 the server answered but is not serving (NOT_SERVING while its data
directory cannot take writes, SERVICE_UNKNOWN for a service it does not have); 2 no answer (unreachable,
TLS refused, timed out). Docker reserves exit code 2 in HEALTHCHECKs, so the images map every failure to 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console

from effcap.clients.errors import EffcapError

DEFAULT_SERVER = "127.0.0.1:50051"
EXIT_SERVING, EXIT_NOT_SERVING = 0, 1


def add_health_command(commands: argparse._SubParsersAction) -> None:
    """Register `effcap health` on the CLI's subcommands."""
    health = commands.add_parser(
        "health", help="is the server serving? (grpc.health.v1; exit 0 yes, 1 no, 2 no answer)"
    )
    health.add_argument("--server", default=DEFAULT_SERVER, help=f"server address (default {DEFAULT_SERVER})")
    health.add_argument(
        "--service", default="", help="a service name, e.g. effcap.v1.AuditService (default: the whole server)"
    )
    health.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer (default 5)")
    tls = health.add_argument_group("TLS (any of these connects over TLS)")
    tls.add_argument("--tls-ca", type=Path, help="verify the server with this CA certificate (PEM)")
    tls.add_argument("--tls-cert", type=Path, help="client certificate for mutual TLS (PEM; with --tls-key)")
    tls.add_argument("--tls-key", type=Path, help="the private key of --tls-cert (PEM)")
    tls.add_argument(
        "--tls-server-name", help="check the server's certificate against this name instead of the address's host"
    )
    health.set_defaults(handler=run_health)


def run_health(args: argparse.Namespace, console: Console) -> int:
    """Print the server's status and return the exit code for it."""
    status = check_health(args.server, args.service, args.timeout, _credentials(args), args.tls_server_name)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    sys.stdout.write(f"{name}\n")
    return EXIT_SERVING if status == health_pb2.HealthCheckResponse.SERVING else EXIT_NOT_SERVING


def check_health(
    address: str,
    service: str = "",
    timeout: float = 5.0,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str | None = None,
) -> int:
    """The ServingStatus the server reports for `service`; EffcapError when no status comes back."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    if credentials is None:
        channel = grpc.insecure_channel(address, options=options)
    else:
        channel = grpc.secure_channel(address, credentials, options=options)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status
        except grpc.RpcError as error:
            if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.NOT_FOUND:
                return health_pb2.HealthCheckResponse.SERVICE_UNKNOWN  # grpc's servicer: a service it does not know
            raise EffcapError.from_rpc_error(error) from None


def _credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    """TLS credentials from the options; None (plaintext) when no TLS option is given."""
    if not (args.tls_ca or args.tls_cert or args.tls_key or args.tls_server_name):
        return None
    if (args.tls_cert is None) != (args.tls_key is None):
        raise EffcapError("--tls-cert and --tls-key go together", "INVALID_ARGUMENT", field="tls_key")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(args.tls_ca, "tls_ca"),
        private_key=_read(args.tls_key, "tls_key"),
        certificate_chain=_read(args.tls_cert, "tls_cert"),
    )


def _read(path: Path | None, field: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise EffcapError(
            f"--{field.replace('_', '-')} {path}: {error.strerror}", "INVALID_ARGUMENT", field=field
        ) from None
