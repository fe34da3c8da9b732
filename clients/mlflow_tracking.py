"""Logging an audit to MLflow: the capacity card's metrics, the policy verdicts, and the report as artifacts.

Users who track experiments in MLflow want the audit beside the training run it judges, so everything goes
to the active run: the one `mlflow.start_run()` opened in a notebook, or the one `MLFLOW_RUN_ID` names for
a command (MLflow's own convention); only when there is none is a run started, and ended, here. mlflow is
an optional extra (`effcap[mlflow]`), imported only when logging is asked for.
"""

from __future__ import annotations

import json
import re
from typing import Any

from google.protobuf import json_format

from effcap.clients.errors import EffcapError
from effcap.clients.policy import RuleResult
from effcap.clients.report_diff import flatten
from effcap.protos.v1 import report_pb2

ARTIFACT_DIR = "effcap"
ANALYSIS_SECTIONS = ("randomization", "memorization", "rademacher", "compressibility", "memorization_scores", "weights")
# Section summaries worth a metric beside the card's (per-layer and per-trial values stay in the artifacts).
SECTION_METRICS = {
    "weights": ("mean_alpha", "layers_alpha_outside_range", "layers_fitted"),
    "memorization_scores": ("share_above_0_5", "share_above_0_25", "mean_memorization", "mean_consistency"),
}
_STATUS_VALUE = {"PASS": 1.0, "WARN": 0.5, "FAIL": 0.0, "ERROR": 0.0}
# MLflow keys allow letters, digits, and _ - . space / only.
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_key(text: str) -> str:
    return _KEY_UNSAFE.sub("_", text)


def report_metrics(report: report_pb2.AuditReport) -> dict[str, float]:
    """The card's numeric fields that the audit set, and a few section summaries, as `effcap.*` metric keys."""
    card = json_format.MessageToDict(report.card, preserving_proto_field_name=True)
    metrics = {metric_key(f"effcap.card.{path}"): value for path, value in flatten(card).items()}
    for section, fields in SECTION_METRICS.items():
        if report.HasField(section):
            message = getattr(report, section)
            for name in fields:
                if message.DESCRIPTOR.fields_by_name[name].has_presence and not message.HasField(name):
                    continue
                metrics[f"effcap.{section}.{name}"] = float(getattr(message, name))
    return metrics


def policy_metrics(results: list[RuleResult]) -> dict[str, float]:
    """One metric per rule: 1 pass, 0.5 warn, 0 fail or error, so a run's table sorts by verdict."""
    return {metric_key(f"effcap.policy.{r.rule.name}"): _STATUS_VALUE[r.status] for r in results}


def log_audit(
    report: report_pb2.AuditReport, results: list[RuleResult] | None = None, verdict: str | None = None
) -> str:
    """Log the report (and a policy check's results) to the active MLflow run; returns the run's id."""
    from effcap.clients.html_report import report_html
    from effcap.clients.render import report_json

    mlflow = import_mlflow()
    started = mlflow.active_run() is None
    run = mlflow.active_run() or mlflow.start_run(run_name=f"effcap {report.audit or 'local audit'}")
    try:
        mlflow.log_metrics(report_metrics(report))
        mlflow.set_tags(_tags(report))
        mlflow.log_text(report_json(report), f"{ARTIFACT_DIR}/report.json")
        mlflow.log_text(report_html(report), f"{ARTIFACT_DIR}/report.html")
        if results is not None:
            mlflow.log_metrics(policy_metrics(results))
            mlflow.set_tags({metric_key(f"effcap.policy.{r.rule.name}"): r.status for r in results})
            if verdict is not None:
                mlflow.set_tag("effcap.policy.verdict", verdict)
            mlflow.log_text(json.dumps([_result_dict(r) for r in results], indent=2), f"{ARTIFACT_DIR}/policy.json")
    finally:
        if started:
            mlflow.end_run()
    return run.info.run_id


def _tags(report: report_pb2.AuditReport) -> dict[str, str]:
    sections = [name for name in ANALYSIS_SECTIONS if report.HasField(name)]
    return {
        "effcap.audit": report.audit or "(local)",
        "effcap.model.sha256": report.model.digest.sha256,
        "effcap.model.family": report.model.family,
        "effcap.dataset": report.dataset.source.builtin or report.dataset.source.artifact.sha256,
        "effcap.analyses": ",".join(sections),
        "effcap.version": report.environment.effcap_version,
    }


def _result_dict(result: RuleResult) -> dict[str, Any]:
    return {
        "rule": result.rule.name,
        "metric": result.rule.metric,
        "status": result.status,
        "message": result.message,
        "value": result.value,
        "baseline": result.baseline,
    }


def import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise EffcapError("MLflow logging needs mlflow: pip install 'effcap[mlflow]'", "FAILED_PRECONDITION") from None
    return mlflow
