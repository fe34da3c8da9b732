"""Offline validators for deploy/: Kubernetes objects, KubeRay's RayCluster, and the Compose file.

Nothing here reaches a network or a cluster: the Kubernetes schemas ship in `kubernetes-validate`, the Compose
Specification's in `check-jsonschema`, and KubeRay's RayCluster schema is vendored in schemas/ (its README says
from where). Each validator raises jsonschema.ValidationError on the first violation.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
DEPLOY = REPOSITORY / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
RAYCLUSTER_SCHEMA = Path(__file__).parent / "schemas" / "kuberay-raycluster-v1.json"
# The oldest and the newest Kubernetes minor the manifests are checked against (kubernetes-validate's range).
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every YAML document in the file, anchors and merge keys resolved as kubectl and docker compose do."""
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def kubernetes_manifests() -> list[Path]:
    """The manifests an operator applies (`kubectl apply -f deploy/kubernetes/`) and the admin pod beside them."""
    return sorted(KUBERNETES.glob("*.yaml")) + sorted((KUBERNETES / "admin").glob("*.yaml"))


def validate_kubernetes_object(document: dict[str, Any], version: str) -> None:
    """A built-in object against Kubernetes' schema for `version`; strict: unknown fields are errors, as with
    `kubectl apply`'s default server-side field validation."""
    kubernetes_validate.validate(document, version, strict=True)


def validate_raycluster(document: dict[str, Any]) -> None:
    """A RayCluster against KubeRay's CRD schema, strict as the API server's field validation is."""
    jsonschema.Draft7Validator(_strict_raycluster_schema()).validate(document)


def validate_compose(document: dict[str, Any]) -> None:
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(document)


@functools.cache
def _compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


@functools.cache
def _strict_raycluster_schema() -> dict[str, Any]:
    """The CRD's schema with unknown fields refused. A structural schema lets the API server drop (by default
    kubectl's strict validation: refuse) any field it does not list, unless x-kubernetes-preserve-unknown-fields;
    JSON Schema allows them unless additionalProperties is false, so a misspelt field would pass unnoticed."""
    schema = json.loads(RAYCLUSTER_SCHEMA.read_text())
    # The CRD lists apiVersion and kind as any string; the API server routes by them, so only these two pass.
    schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind", "metadata", "spec"})
    schema["properties"]["apiVersion"] = {"const": "ray.io/v1"}
    schema["properties"]["kind"] = {"const": "RayCluster"}
    _refuse_unknown_fields(schema)
    return schema


def _refuse_unknown_fields(schema: dict[str, Any]) -> None:
    """additionalProperties: false on every object schema that lists its properties, down through the schema."""
    properties = schema.get("properties", {})
    if properties and "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema["additionalProperties"] = False
    children = [*properties.values(), *schema.get("anyOf", ()), *schema.get("allOf", ()), *schema.get("oneOf", ())]
    children += [schema[key] for key in ("items", "additionalProperties", "not") if isinstance(schema.get(key), dict)]
    for child in children:
        _refuse_unknown_fields(child)
