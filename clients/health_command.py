"""`effcap health`: ask a server's standard gRPC health service (grpc.health.v1) whether it is serving.

Container HEALTHCHECKs and Kubernetes exec probes run it beside the server. The kubelet's own `grpc:` probe
speaks plaintext only, and the deployed server speaks TLS, so the probe needs a client that takes a CA
certificate (and, where the certificate is not issued for the address the probe dials, a server name to check
it against). It takes the connection options every client command takes (credentials.py); the health service
needs no API key, so a --token (or $EFFCAP_TOKEN) is sent and ignored.

Exit codes follow the CLI's: 0 SERVING; 1 the server answered but is not serving (NOT_SERVING while its data
directory cannot take writes, SERVICE_UNKNOWN for a service it does not have); 2 no answer (unreachable,
TLS refused, timed out). Docker reserves exit code 2 in HEALTHCHECKs, so the images map every failure to 1.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console

from effcap.clients.credentials import ClientTls, add_connection_arguments, connection_from_args, open_channel
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
    add_connection_arguments(health)
    health.set_defaults(handler=run_health)


def run_health(args: argparse.Namespace, console: Console) -> int:
    """Print the server's status and return the exit code for it."""
    token, tls = connection_from_args(args)
    status = check_health(args.server, args.service, args.timeout, tls, token)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    sys.stdout.write(f"{name}\n")
    return EXIT_SERVING if status == health_pb2.HealthCheckResponse.SERVING else EXIT_NOT_SERVING


def check_health(
    address: str, service: str = "", timeout: float = 5.0, tls: ClientTls | None = None, token: str | None = None
) -> int:
    """The ServingStatus the server reports for `service`; EffcapError when no status comes back."""
    with open_channel(address, [], token, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status
        except grpc.RpcError as error:
            if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.NOT_FOUND:
                return health_pb2.HealthCheckResponse.SERVICE_UNKNOWN  # grpc's servicer: a service it does not know
            raise EffcapError.from_rpc_error(error) from None

