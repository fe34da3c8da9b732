"""The `effcap` command line: serve, audit (remote or --local), demo.

Exit codes: 0 success, 2 error (bad input, unreachable server, failed audit). Heavy imports (torch,
the server) happen only inside the commands that need them, so the client installs light.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console

from effcap.clients.errors import EffcapError

DEFAULT_SERVER = "127.0.0.1:50051"
EXIT_OK, EXIT_ERROR = 0, 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        return args.handler(args, console)
    except EffcapError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="effcap", description="Effective-capacity audits of neural networks.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--data-dir", type=Path, default=Path("effcap-data"), help="SQLite store and artifacts (default ./effcap-data)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    serve.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    serve.add_argument("--max-artifact-bytes", type=int, default=4 << 30)
    serve.add_argument("--max-running-audits", type=int, default=1)
    serve.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    serve.add_argument("--ready-file", type=Path, help="write HOST:PORT here once listening")
    serve.set_defaults(handler=_serve)

    audit = commands.add_parser("audit", help="audit a checkpoint on a dataset")
    audit.add_argument("model", type=Path, help="safetensors checkpoint")
    audit.add_argument("--data", required=True, help=".npz/safetensors file, or builtin:digits")
    where = audit.add_mutually_exclusive_group()
    where.add_argument("--server", default=DEFAULT_SERVER, help=f"server address (default {DEFAULT_SERVER})")
    where.add_argument("--local", action="store_true", help="run in this process, no server (needs effcap[server])")
    _add_spec_arguments(audit)
    audit.add_argument("--json", action="store_true", help="print the report as JSON (protobuf JSON mapping)")
    audit.add_argument("--request-id", help="idempotency key: repeating it returns the same audit")
    audit.add_argument("--no-progress", action="store_true")
    audit.set_defaults(handler=_audit)

    demo = commands.add_parser("demo", help="start a server, audit an MLP on digits through it, print the report")
    demo.add_argument("--work-dir", type=Path, help="keep the server's data and the demo files here")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=_demo)
    return parser


def _add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    from effcap.clients.spec_args import CONDITION_HELP

    group = parser.add_argument_group("analyses and training (unset options take the server's documented defaults)")
    group.add_argument("--analyses", default="randomization", help="comma-separated: randomization, memorization")
    group.add_argument("--arch", type=Path, help="architecture JSON; default: the checkpoint's embedded effcap.arch")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--conditions", help=CONDITION_HELP)
    group.add_argument("--seeds", type=int, help="trials per condition")
    group.add_argument("--lr", type=float)
    group.add_argument("--lr-decay", type=float, help="per-epoch multiplicative decay")
    group.add_argument("--batch-size", type=int)
    group.add_argument("--epochs", type=int, help="budget in epochs")
    group.add_argument("--fit-threshold", type=float)
    group.add_argument("--init-from-checkpoint", action="store_true", help="start trials from the checkpoint instead of a fresh init")
    group.add_argument("--mem-min-size", type=int, help="memorization: smallest random-label subset")
    group.add_argument("--mem-max-size", type=int, help="memorization: largest subset (default: the train split)")
    group.add_argument("--mem-seeds", type=int, help="memorization: networks per subset size")
    group.add_argument("--mem-bisection-steps", type=int)


def _spec_from_args(args: argparse.Namespace):
    from effcap.clients.spec_args import architecture_struct, memorization_spec, randomization_spec, training_spec
    from effcap.protos.v1 import spec_pb2

    analyses = {a.strip() for a in args.analyses.split(",") if a.strip()}
    unknown = analyses - {"randomization", "memorization"}
    if unknown or not analyses:
        raise EffcapError(f"--analyses: unknown {sorted(unknown)}; choose randomization and/or memorization", "INVALID_ARGUMENT")
    spec = spec_pb2.AuditSpec(seed=args.seed)
    if "randomization" in analyses:
        try:
            spec.randomization.CopyFrom(
                randomization_spec(
                    args.conditions, args.seeds, args.lr, args.lr_decay, args.batch_size, args.epochs, args.fit_threshold, args.init_from_checkpoint
                )
            )
        except ValueError as error:
            raise EffcapError(f"--conditions: {error}", "INVALID_ARGUMENT") from None
    if "memorization" in analyses:
        training = training_spec(args.lr, args.lr_decay, args.batch_size, args.epochs, args.fit_threshold)
        spec.memorization.CopyFrom(memorization_spec(args.mem_min_size, args.mem_max_size, args.mem_seeds, args.mem_bisection_steps, training))
    if args.arch:
        spec.architecture.CopyFrom(architecture_struct(args.arch))
    return spec


def _serve(args: argparse.Namespace, console: Console) -> int:
    from effcap.service.server import ServerConfig, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = ServerConfig(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        max_artifact_bytes=args.max_artifact_bytes,
        max_running_audits=args.max_running_audits,
        device=args.device,
    )
    serve(config, ready_file=args.ready_file)
    return EXIT_OK


def _audit(args: argparse.Namespace, console: Console) -> int:
    spec = _spec_from_args(args)
    for path in (args.model, *([] if args.data.startswith("builtin:") else [Path(args.data)])):
        if not path.is_file():
            raise EffcapError(f"{path}: no such file", "INVALID_ARGUMENT")
    if args.local:
        from effcap.clients.local import run_local

        report = run_local(args.model, args.data, spec, console, show_progress=not args.no_progress)
    else:
        from effcap.clients.remote import run_remote

        report = run_remote(args.server, args.model, args.data, spec, console, args.request_id, show_progress=not args.no_progress)
    _print_report(report, args.json)
    return EXIT_OK


def _demo(args: argparse.Namespace, console: Console) -> int:
    from effcap.clients.demo import run_demo

    report = run_demo(args.work_dir, console)
    _print_report(report, args.json)
    return EXIT_OK


def _print_report(report, as_json: bool) -> None:
    from effcap.clients.render import print_report, report_json

    if as_json:
        print(report_json(report))
    else:
        print_report(report, Console())


if __name__ == "__main__":
    sys.exit(main())
