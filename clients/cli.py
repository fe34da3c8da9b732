"""The `effcap` command line: serve, audit (remote or --local), report, check, diff, demo, health.

Exit codes: 0 success, 1 a policy rule violated (check, diff), 2 error (bad input, unreachable
server, failed audit, invalid policy). Heavy imports (torch, the server) happen only inside the
commands that need them, so the client installs light.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from effcap.clients.console import output_console
from effcap.clients.credentials import add_connection_arguments, connection_from_args
from effcap.clients.errors import EffcapError, server_extras_missing

if TYPE_CHECKING:
    from effcap.clients.policy import RuleResult
    from effcap.protos.v1 import report_pb2, spec_pb2

# The analyses --analyses names (the AuditSpec fields; the client does not import the library).
ANALYSES = ("randomization", "memorization", "rademacher", "compressibility", "memorization_scores", "weights")
# Those that read the checkpoint alone (capacity.specs.DATA_FREE_ANALYSES): an audit of only these needs no --data.
DATA_FREE_ANALYSES = ("weights",)

DEFAULT_SERVER = "127.0.0.1:50051"
PRESETS = ("quick", "standard", "paper")
EXIT_OK, EXIT_ERROR = 0, 2
FORMATS = ("text", "json", "md", "html")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    console = output_console(stderr=True)
    try:
        return args.handler(args, console)
    except EffcapError as error:
        # A message is text, not rich markup: "[v2]" in a path or "effcap[data]" must print as written.
        console.print(f"[red]error:[/red] {escape(error_text(error, args))}", highlight=False, soft_wrap=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


def error_text(error: EffcapError, args: argparse.Namespace) -> str:
    """The error as printed: where no server answered, a command that can run without one (--local) says so."""
    if error.unreachable and getattr(args, "local", None) is False:
        return f"{error}; or run it in this process, with no server: --local"
    return str(error)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="effcap", description="Effective-capacity audits of neural networks.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--data-dir", type=Path, default=Path("effcap-data"), help="SQLite store and artifacts (default ./effcap-data)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; IPv6: ::1 or [::1])")
    serve.add_argument("--port", type=_port, default=50051, help="0 picks a free port")
    serve.add_argument("--max-artifact-bytes", type=int, default=4 << 30)
    serve.add_argument("--max-running-audits", type=_positive_int, default=1, help="audits trained at once (default 1)")
    serve.add_argument(
        "--worker-threads",
        type=_positive_int,
        help="torch threads per worker (default: the CPUs the server is given, divided among --max-running-audits)",
    )
    serve.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    serve.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where trial batches run: the audit's worker process (default) or a Ray cluster (docs/ray.md)",
    )
    serve.add_argument("--ray-address", help="the Ray cluster for --executor ray: its head's HOST:PORT, or auto")
    serve.add_argument(
        "--ray-task-cpus", type=_positive_int, default=1, help="CPUs (and threads) of a CPU batch's Ray task"
    )
    serve.add_argument(
        "--max-batch-trials",
        type=_positive_int,
        help="at most this many trials per batch: smaller batches spread over more workers (either executor)",
    )
    serve.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="serve Prometheus metrics at http(s)://METRICS_HOST:PORT/metrics",
    )
    serve.add_argument(
        "--metrics-host",
        help="address for --metrics-port (default loopback only; beyond it, as for --host: TLS with API keys or "
        "with mutual TLS (--tls-client-ca), or --insecure)",
    )
    serve.add_argument("--max-long-calls", type=int, default=24, help="uploads, event streams and waits at once; more are refused with a retry hint")
    serve.add_argument("--upload-idle-seconds", type=float, default=60.0, help="cancel an upload that sends nothing for this long")
    serve.add_argument("--max-training-examples", type=int, default=10**10, help="refuse audits that would train on more examples than this")
    serve.add_argument("--max-parameters", type=int, default=500_000_000, help="refuse models with more parameters than this")
    serve.add_argument("--max-graph-nodes", type=int, default=20_000, help="refuse ONNX models with more nodes")
    serve.add_argument("--max-graph-weight-bytes", type=int, default=2 << 30, help="refuse ONNX models with more weight bytes")
    serve.add_argument(
        "--max-inflated-bytes", type=int, default=4 << 30, help="memory an audit's inputs may take while they are checked"
    )
    serve.add_argument("--retain-reports", type=_days, metavar="DAYS", help="delete audits that ended this long ago")
    serve.add_argument(
        "--retain-artifacts", type=_days, metavar="DAYS", help="delete uploads no audit has used for this long"
    )
    serve.add_argument(
        "--retention-sweep-seconds", type=float, default=3600.0, help="how often expired audits and uploads are deleted"
    )
    serve.add_argument("--validation-processes", type=_positive_int, default=2, help="inputs checked at once (default 2)")
    serve.add_argument(
        "--ready-file", type=Path, help="once listening, write the HOST:PORT a client here dials (loopback for 0.0.0.0)"
    )
    serve.add_argument("--quota-stored-bytes", type=_positive_int, help="per principal: artifact bytes held (default unlimited)")
    serve.add_argument("--quota-open-audits", type=_positive_int, help="per principal: audits queued or running at once")
    serve.add_argument(
        "--quota-daily-training-examples", type=_positive_int, help="per principal: training examples of audits created in 24 hours"
    )
    serve.add_argument("--tls-cert", type=Path, help="serve over TLS with this certificate (PEM; with --tls-key)")
    serve.add_argument("--tls-key", type=Path, help="the private key of --tls-cert (PEM)")
    serve.add_argument(
        "--tls-client-ca", type=Path, help="mutual TLS: require client certificates signed by this CA; a certificate's subject is its principal"
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host or --metrics-host without TLS or API keys, and anonymous callers from "
        "anywhere until a key exists",
    )
    serve.set_defaults(handler=_serve)

    audit = commands.add_parser("audit", help="audit a checkpoint on a dataset")
    audit.add_argument("model", type=Path, help="safetensors checkpoint or ONNX model (.onnx)")
    audit.add_argument("--data", help=".npz/safetensors file, or builtin:digits (not needed by --analyses weights)")
    _add_audit_arguments(audit)
    audit.add_argument("--json", action="store_true", help="print the report as JSON (protobuf JSON mapping)")
    audit.add_argument("--format", choices=FORMATS, default="text")
    audit.add_argument("-o", "--output", type=Path, help="write the report here instead of standard output")
    audit.add_argument("--scores-out", type=Path, help="memorization_scores: write every example's scores here (.npz)")
    audit.add_argument(
        "--dry-run", action="store_true", help="print the trials, SGD steps and estimated time per analysis on the server's device; train nothing"
    )
    audit.set_defaults(handler=_audit)

    watch = commands.add_parser("watch", help="follow a running audit's progress, then print its report")
    watch.add_argument("audit", help="an audit name (audits/ID) or ID")
    watch.add_argument("--server", default=DEFAULT_SERVER, help=f"server address (default {DEFAULT_SERVER})")
    add_connection_arguments(watch)
    watch.add_argument("--format", choices=FORMATS, default="text")
    watch.set_defaults(handler=_watch)

    report = commands.add_parser("report", help="render a report: a saved JSON file, or an audit on the server")
    report.add_argument("source", help="REPORT.json, or an audit name (audits/ID) or ID")
    report.add_argument("--server", default=DEFAULT_SERVER, help=f"server address (default {DEFAULT_SERVER})")
    add_connection_arguments(report)
    report.add_argument("--format", choices=FORMATS, default="text")
    report.add_argument("-o", "--output", type=Path)
    report.add_argument("--scores-out", type=Path, help="memorization_scores: write every example's scores here (.npz)")
    report.set_defaults(handler=_report)

    check = commands.add_parser("check", help="audit (or read a report) and enforce a policy; exit 1 on violation")
    check.add_argument("model", type=Path, nargs="?", help="safetensors checkpoint or ONNX model (or --report)")
    check.add_argument("--data", help=".npz/safetensors file, or builtin:digits")
    check.add_argument("--report", type=Path, help="check this saved report instead of running an audit")
    check.add_argument("--policy", type=Path, required=True, help="policy YAML (see docs/ci.md)")
    check.add_argument("--baseline", type=Path, help="baseline report JSON for rules on changes")
    check.add_argument("--strict", action="store_true", help="warn-rules fail too")
    check.add_argument("--junit-xml", type=Path, help="write JUnit XML here")
    check.add_argument("--markdown", type=Path, help="write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
    check.add_argument("--save-report", type=Path, help="write the audited report as JSON here (a future baseline)")
    _add_audit_arguments(check)
    check.set_defaults(handler=_check)

    diff = commands.add_parser("diff", help="what changed between two reports; with --policy, exit 1 on violation")
    diff.add_argument("baseline", type=Path)
    diff.add_argument("current", type=Path)
    diff.add_argument("--policy", type=Path)
    diff.add_argument("--strict", action="store_true")
    diff.set_defaults(handler=_diff)

    demo = commands.add_parser("demo", help="start a server, audit an MLP on digits through it, print the report")
    demo.add_argument("--work-dir", type=Path, help="keep the server's data and the demo files here")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=_demo)

    from effcap.clients.data_pack.command import add_data_command

    add_data_command(commands)
    from effcap.clients.health_command import add_health_command

    add_health_command(commands)
    from effcap.clients.admin_command import add_admin_command

    add_admin_command(commands, add_connection_arguments, _client)
    from effcap.clients.artifacts_command import add_artifacts_command

    add_artifacts_command(commands, add_connection_arguments, _client)
    return parser


def _client(args: argparse.Namespace):
    from effcap.clients.sdk import EffcapClient

    token, tls = connection_from_args(args)
    return EffcapClient(args.server, token=token, tls=tls)


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"must be a positive number of days, got {text}")
    return value


def _port(text: str) -> int:
    """A TCP port, 0 to 65535: gRPC wraps a larger one (70000 listened on 4464) and a socket raises on it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (0 picks a free one), got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--server", default=DEFAULT_SERVER, help=f"server address (default {DEFAULT_SERVER})")
    where.add_argument("--local", action="store_true", help="run in this process, no server (needs effcap[server])")
    parser.add_argument(
        "--threads", type=_positive_int, help="with --local: torch threads (default: the CPUs this process is given)"
    )
    add_connection_arguments(parser)
    parser.add_argument("--request-id", help="idempotency key: repeating it returns the same audit")
    parser.add_argument("--no-cache", action="store_true", help="run again even if the server has the report of an identical audit")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--mlflow",
        action="store_true",
        help="log the card's metrics, policy verdicts and the report to the active MLflow run (effcap[mlflow])",
    )
    _add_spec_arguments(parser)


def _add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    from effcap.clients.spec_args import CONDITION_HELP

    group = parser.add_argument_group("analyses and training (unset options take the server's documented defaults)")
    group.add_argument("--analyses", default="randomization", help=f"comma-separated: {', '.join(ANALYSES)}")
    group.add_argument("--arch", type=Path, help="architecture JSON; default: the checkpoint's embedded effcap.arch")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument(
        "--preset",
        choices=PRESETS,
        help="defaults for unset options: quick (true and random labels, 1 seed: minutes on a CPU), standard (the default: "
        "the randomization test's schedule in SGD steps with a probed learning rate, so its trials fit), paper (Zhang et al.'s conditions and schedule)",
    )
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
    group.add_argument("--scores-models", type=int, help="memorization_scores: networks trained, each on its own subset (default 64)")
    group.add_argument("--scores-fraction", type=float, help="memorization_scores: share of the train split in each subset (default 0.7)")
    group.add_argument("--scores-top", type=int, help="memorization_scores: most memorised examples and influence pairs listed")
    group.add_argument("--rad-draws", type=int, help="rademacher: random sign vectors")
    group.add_argument("--rad-radii", help="rademacher: comma-separated ball radii as fractions of the parameter norm")
    group.add_argument("--rad-examples", type=int, help="rademacher: training examples used")
    group.add_argument("--rad-no-fit", action="store_true", help="rademacher: skip fitting random signs (the global estimate)")
    group.add_argument("--comp-methods", help="compressibility: comma-separated methods (default all)")
    group.add_argument("--comp-tolerance", type=float, help="compressibility: accuracy loss accepted, e.g. 0.01")
    group.add_argument("--comp-train-examples", type=int, help="compressibility: n of the bound, the examples the model was trained on")
    group.add_argument("--init-model", type=Path, help="rademacher: the checkpoint's weights at initialisation, for distances from init")


def _spec_from_args(args: argparse.Namespace):
    from effcap.clients.spec_args import architecture_struct, memorization_scores_spec, memorization_spec, rademacher_spec, randomization_spec, training_spec
    from effcap.protos.v1 import spec_pb2

    analyses = {a.strip() for a in args.analyses.split(",") if a.strip()}
    unknown = analyses - set(ANALYSES)
    if unknown or not analyses:
        raise EffcapError(f"--analyses: unknown {sorted(unknown)}; choose from {', '.join(ANALYSES)}", "INVALID_ARGUMENT")
    spec = spec_pb2.AuditSpec(seed=args.seed, preset=args.preset or "")
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
    if "rademacher" in analyses:
        training = training_spec(args.lr, args.lr_decay, args.batch_size, args.epochs, args.fit_threshold)
        try:
            radii = [float(r) for r in args.rad_radii.split(",")] if args.rad_radii else None
        except ValueError:
            raise EffcapError(f"--rad-radii: expected comma-separated numbers, got {args.rad_radii!r}", "INVALID_ARGUMENT") from None
        spec.rademacher.CopyFrom(rademacher_spec(args.rad_draws, radii, args.rad_examples, not args.rad_no_fit, training))
    if "memorization_scores" in analyses:
        training = training_spec(args.lr, args.lr_decay, args.batch_size, args.epochs, args.fit_threshold)
        spec.memorization_scores.CopyFrom(memorization_scores_spec(args.scores_models, args.scores_fraction, args.scores_top, training))
    if "compressibility" in analyses:
        compressibility = spec_pb2.CompressibilitySpec()
        if args.comp_methods:
            compressibility.methods.extend(m.strip() for m in args.comp_methods.split(",") if m.strip())
        if args.comp_tolerance is not None:
            compressibility.tolerance = args.comp_tolerance
        if args.comp_train_examples is not None:
            compressibility.train_set_size = args.comp_train_examples
        spec.compressibility.CopyFrom(compressibility)
    if "weights" in analyses:
        spec.weights.SetInParent()
    if args.arch:
        spec.architecture.CopyFrom(architecture_struct(args.arch))
    return spec


def needs_data(spec: spec_pb2.AuditSpec) -> bool:
    """Whether the spec asks for an analysis that reads data."""
    return any(spec.HasField(name) for name in ANALYSES if name not in DATA_FREE_ANALYSES)


def spec_from_options(analyses: str | list[str], **options: object) -> spec_pb2.AuditSpec:
    """The AuditSpec `effcap audit --analyses ANALYSES --OPTION VALUE ...` builds, for callers without a command line.

    Options are the flags' names with underscores (seeds=3, epochs=50, rad_draws=4; lists for the comma-separated
    ones), so the notebook API and the CLI say the same things the same way.
    """
    parser = argparse.ArgumentParser(add_help=False)
    _add_spec_arguments(parser)
    args = parser.parse_args([])
    unknown = sorted(set(options) - set(vars(args)))
    if unknown:
        raise EffcapError(f"unknown option(s) {unknown}; the options are {sorted(vars(args))}", "INVALID_ARGUMENT")
    for name, value in options.items():
        setattr(args, name, ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value)
    args.analyses = analyses if isinstance(analyses, str) else ",".join(analyses)
    try:
        return _spec_from_args(args)
    except TypeError as error:  # a value of the wrong type for its proto field
        raise EffcapError(f"INVALID_ARGUMENT: {error}", "INVALID_ARGUMENT") from None


def _serve(args: argparse.Namespace, console: Console) -> int:
    try:
        from effcap.capacity.graphs.onnx_wire import OnnxLimits
        from effcap.service.executors.config import ExecutorConfig
        from effcap.service.limits import AuditLimits
        from effcap.service.retention import DAY_S, RetentionPolicy
        from effcap.service.server import ServerConfig, serve

        if importlib.util.find_spec("torch") is None:  # the server does not import it, its workers and validation do
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
    except ImportError as error:
        raise server_extras_missing("effcap serve", error) from None

    from effcap.clients.serve_hosts import bare_host, grpc_host
    from effcap.service.auth.tls import ServerTls
    from effcap.service.quotas import Quotas

    host = grpc_host(args.host, "--host")
    metrics_host = bare_host(args.metrics_host, "--metrics-host") if args.metrics_host is not None else None
    if (args.tls_cert is None) != (args.tls_key is None):
        raise EffcapError("--tls-cert and --tls-key go together", "INVALID_ARGUMENT", field="tls_key")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise EffcapError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)", "INVALID_ARGUMENT", field="tls_cert")
    tls = ServerTls(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert is not None else None
    if args.metrics_host is not None and args.metrics_port is None:  # an address for no endpoint: a forgotten port
        message = "--metrics-host needs --metrics-port: metrics are served only on a port you choose (0: any free one)"
        raise EffcapError(message, "INVALID_ARGUMENT", field="metrics_port")
    if args.executor == "ray" and importlib.util.find_spec("ray") is None:  # looked up, not imported
        raise EffcapError("--executor ray needs Ray on this machine: pip install 'effcap[ray]'", "FAILED_PRECONDITION")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = ServerConfig(
        tls=tls,
        insecure=args.insecure,
        quotas=Quotas(args.quota_stored_bytes, args.quota_open_audits, args.quota_daily_training_examples),
        data_dir=args.data_dir,
        host=host,
        port=args.port,
        max_artifact_bytes=args.max_artifact_bytes,
        max_running_audits=args.max_running_audits,
        worker_threads=args.worker_threads,
        device=args.device,
        max_long_calls=args.max_long_calls,
        upload_idle_s=args.upload_idle_seconds,
        metrics_port=args.metrics_port,
        metrics_host=metrics_host if metrics_host is not None else ServerConfig.metrics_host,
        audit_limits=AuditLimits(max_training_examples=args.max_training_examples, max_parameters=args.max_parameters),
        onnx_limits=OnnxLimits(max_nodes=args.max_graph_nodes, max_weight_bytes=args.max_graph_weight_bytes),
        max_inflated_bytes=args.max_inflated_bytes,
        validation_processes=args.validation_processes,
        retention=RetentionPolicy(
            reports_s=args.retain_reports * DAY_S if args.retain_reports is not None else None,
            artifacts_s=args.retain_artifacts * DAY_S if args.retain_artifacts is not None else None,
            sweep_interval_s=args.retention_sweep_seconds,
        ),
        executor=ExecutorConfig(
            kind=args.executor,
            ray_address=args.ray_address,
            ray_task_cpus=args.ray_task_cpus,
            batch_store=args.data_dir / "batches",
            max_batch_trials=args.max_batch_trials,
        ),
    )
    serve(config, ready_file=args.ready_file)
    return EXIT_OK


def _check_input_files(args: argparse.Namespace, spec) -> None:
    """The files named on the command line exist, and data is given unless every analysis runs without it."""
    if args.data is None and needs_data(spec):
        message = "--data is required: only --analyses weights runs without data"
        raise EffcapError(message, "INVALID_ARGUMENT", field="data")
    files = [] if args.data is None or args.data.startswith("builtin:") else [Path(args.data)]
    for path in (args.model, *files, *([args.init_model] if args.init_model else [])):
        if not path.is_file():
            raise EffcapError(f"{path}: no such file", "INVALID_ARGUMENT")


def _run_audit(args: argparse.Namespace, console: Console):
    spec = _spec_from_args(args)
    _check_input_files(args, spec)
    if args.threads is not None and not args.local:
        raise EffcapError("--threads applies to --local runs; a server sizes its workers with --worker-threads", "INVALID_ARGUMENT")
    if args.local:
        from effcap.clients.local import run_local

        return run_local(
            args.model,
            args.data,
            spec,
            console,
            show_progress=not args.no_progress,
            initial_model=args.init_model,
            threads=args.threads,
        )
    from effcap.clients.remote import run_remote

    return run_remote(
        _client(args),
        args.model,
        args.data,
        spec,
        console,
        args.request_id,
        show_progress=not args.no_progress,
        skip_cache=args.no_cache,
        initial_model=args.init_model,
    )


def _audit(args: argparse.Namespace, console: Console) -> int:
    if args.dry_run:
        return _dry_run(args)
    _require_mlflow(args)
    analyses = {name.strip() for name in args.analyses.split(",")}
    if args.scores_out is not None and "memorization_scores" not in analyses:
        message = "--scores-out needs --analyses to include memorization_scores (nothing else writes scores)"
        raise EffcapError(message, "INVALID_ARGUMENT", field="scores_out")
    report = _run_audit(args, console)
    _write_report(report, "json" if args.json else args.format, args.output)
    _write_scores(report, args.scores_out)
    if args.mlflow:
        _log_to_mlflow(report, console)
    return EXIT_OK


def _dry_run(args: argparse.Namespace) -> int:
    from effcap.clients.estimate_view import estimate_lines

    spec = _spec_from_args(args)
    _check_input_files(args, spec)
    if args.local:
        from effcap.clients.local import estimate_local

        estimate = estimate_local(args.model, args.data, spec, args.threads)
    else:
        from effcap.clients.remote import estimate_remote

        estimate = estimate_remote(_client(args), args.model, args.data, spec)
    sys.stdout.write("\n".join(estimate_lines(estimate)) + "\n")
    return EXIT_OK


def _watch(args: argparse.Namespace, console: Console) -> int:
    from effcap.clients.progress_view import ProgressView

    name = args.audit if args.audit.startswith("audits/") else f"audits/{args.audit}"
    with _client(args) as client:
        with ProgressView(console) as view:
            operation = client.wait(name, on_event=view.on_event)
        report = client.report_of(operation)
    _write_report(report, args.format, None)
    return EXIT_OK


def _report(args: argparse.Namespace, console: Console) -> int:
    from effcap.clients.policy import load_report

    source = Path(args.source)
    if source.is_file():
        report = load_report(source)
    elif _names_a_file(args.source):
        message = f"{args.source}: no such file (a saved report; an audit is named audits/ID or ID)"
        raise EffcapError(message, "INVALID_ARGUMENT")
    else:
        name = args.source if args.source.startswith("audits/") else f"audits/{args.source}"
        with _client(args) as client:
            audit = client.get_audit(name)
        if not audit.HasField("report"):
            raise EffcapError(f"{name} has no report (state {audit.state}): {audit.error.message or 'not finished'}", "FAILED_PRECONDITION")
        report = audit.report
    _write_report(report, args.format, args.output)
    _write_scores(report, args.scores_out)
    return EXIT_OK


def _names_a_file(source: str) -> bool:
    """A path, not an audit id: audit ids are hex, so a suffix or a directory separator means a file."""
    return not source.startswith("audits/") and ("/" in source or "\\" in source or Path(source).suffix != "")


def _write_scores(report, path: Path | None) -> None:
    """The raw per-example memorisation scores the report carries, as the .npz archive they travel as."""
    if path is None:
        return
    if not report.HasField("memorization_scores"):
        raise EffcapError("--scores-out: the report has no memorization_scores section", "INVALID_ARGUMENT")
    if not report.memorization_scores.scores.npz:
        raise EffcapError("--scores-out: the scores archive was too large to travel in the report", "FAILED_PRECONDITION")
    path.write_bytes(report.memorization_scores.scores.npz)


def _check(args: argparse.Namespace, console: Console) -> int:
    from effcap.clients.policy import evaluate, exit_code, load_policy, load_report
    from effcap.clients.policy_output import junit_xml, markdown_summary, results_table
    from effcap.clients.render import report_json

    policy = load_policy(args.policy)  # invalid policies fail before any audit runs
    _require_mlflow(args)
    baseline = load_report(args.baseline) if args.baseline else None
    if args.report is not None:
        report = load_report(args.report)
    elif args.model is not None:  # _run_audit says when --data is missing
        report = _run_audit(args, console)
    else:
        raise EffcapError("give MODEL --data DATA to audit, or --report REPORT.json", "INVALID_ARGUMENT")
    if args.save_report:
        args.save_report.write_text(report_json(report))
    results = evaluate(policy, report, baseline)
    code = exit_code(results, args.strict)
    verdict = {0: "passed", 1: "violated", 2: "error"}[code]
    output_console().print(results_table(results))
    output_console().print(f"policy {verdict}", highlight=False)
    if args.junit_xml:
        args.junit_xml.write_text(junit_xml(results, args.strict))
    if args.markdown:
        args.markdown.write_text(markdown_summary(results, verdict))
    if args.mlflow:
        _log_to_mlflow(report, console, results, verdict)
    return code


def _require_mlflow(args: argparse.Namespace) -> None:
    """A missing mlflow fails before the audit runs, not after it."""
    if args.mlflow:
        from effcap.clients.mlflow_tracking import import_mlflow

        import_mlflow()


def _log_to_mlflow(
    report: report_pb2.AuditReport, console: Console, results: list[RuleResult] | None = None, verdict: str | None = None
) -> None:
    from effcap.clients.mlflow_tracking import log_audit

    run_id = log_audit(report, results, verdict)
    console.print(f"logged to MLflow run {run_id}", highlight=False)


def _diff(args: argparse.Namespace, console: Console) -> int:
    from effcap.clients.policy import evaluate, exit_code, load_policy, load_report
    from effcap.clients.policy_output import results_table
    from effcap.clients.report_diff import diff_view

    policy = load_policy(args.policy) if args.policy else None
    baseline, current = load_report(args.baseline), load_report(args.current)
    output_console().print(diff_view(baseline, current))
    if policy is None:
        return EXIT_OK
    results = evaluate(policy, current, baseline)
    output_console().print(results_table(results))
    return exit_code(results, args.strict)


def _demo(args: argparse.Namespace, console: Console) -> int:
    from effcap.clients.demo import run_demo

    report = run_demo(args.work_dir, console)
    _write_report(report, "json" if args.json else "text", None)
    return EXIT_OK


def _write_report(report, fmt: str, output: Path | None) -> None:
    from effcap.clients.render import print_report, report_json

    if fmt == "text":
        if output is None:
            print_report(report)
        else:
            with output.open("w") as handle:
                print_report(report, output_console(file=handle))
        return
    if fmt == "json":
        text = report_json(report) + "\n"
    elif fmt == "md":
        from effcap.clients.markdown_report import report_markdown

        text = report_markdown(report)
    else:
        from effcap.clients.html_report import report_html

        text = report_html(report)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
