"""deploy/compose.yaml against the Compose Specification's JSON schema, and what the deployment relies on."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from tests.deploy.schemas import DEPLOY, load_documents, validate_compose

COMPOSE = DEPLOY / "compose.yaml"
TLS_FILES = {"tls.crt", "tls.key", "ca.crt"}


@pytest.fixture
def compose() -> dict[str, Any]:
    (document,) = load_documents(COMPOSE)
    return document


def test_the_compose_file_is_valid(compose: dict[str, Any]) -> None:
    validate_compose(compose)


def workers(compose: dict[str, Any]) -> dict[str, Any]:
    return {name: service for name, service in compose["services"].items() if name.startswith("ray-worker")}


def test_server_ray_head_and_workers(compose: dict[str, Any]) -> None:
    assert {"server", "ray-head"} <= set(compose["services"]) and len(workers(compose)) >= 2


def test_each_worker_reserves_its_own_gpu(compose: dict[str, Any]) -> None:
    """Replicas of one service would all get the same GPUs, so each worker names its device."""
    gpus = []
    for service in workers(compose).values():
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        gpus += device["device_ids"]
        assert service["command"][:2] == ["ray", "start"] and "--address=ray-head:6379" in service["command"]
    assert len(gpus) == len(set(gpus)) == len(workers(compose))


def test_every_node_sees_the_data_directory_at_the_same_path(compose: dict[str, Any]) -> None:
    """Ray tasks open the audit's inputs by their path in the server's data directory."""
    for name, service in compose["services"].items():
        assert "effcap-data:/data" in service["volumes"], name
    assert "effcap-data" in compose["volumes"]


def test_the_server_uses_ray_and_serves_tls(compose: dict[str, Any]) -> None:
    server = compose["services"]["server"]
    command = " ".join(server["command"])
    assert "--executor ray --ray-address auto" in command and "--num-cpus=0 --num-gpus=0" in command
    assert "--tls-cert /run/secrets/effcap-tls/tls.crt --tls-key /run/secrets/effcap-tls/tls.key" in command
    assert "--insecure" not in command
    targets = {secret["target"] for secret in server["secrets"]}
    assert targets == {f"/run/secrets/effcap-tls/{name}" for name in TLS_FILES}
    assert "effcap health" in " ".join(server["healthcheck"]["test"]) and "50051:50051" in server["ports"]


def test_secrets_come_from_the_ignored_folder(compose: dict[str, Any]) -> None:
    files = {secret["file"] for secret in compose["secrets"].values()}
    assert files == {f"./secrets/{name}" for name in TLS_FILES}
    assert "/deploy/secrets/" in (DEPLOY.parent / ".gitignore").read_text().split()


def test_every_ray_node_needs_the_ray_token(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service["environment"]["RAY_AUTH_MODE"] == "token", name
        assert service["environment"]["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?"), name


def test_published_ray_ports_are_loopback_only(compose: dict[str, Any]) -> None:
    """The dashboard accepts job submissions (code): it must not face the network."""
    for name in ("ray-head", *workers(compose)):
        assert all(port.startswith("127.0.0.1:") for port in compose["services"][name].get("ports", [])), name


BROKEN = {
    "a misspelt key": lambda c: c["services"]["server"].update(healthcheks={}),
    "a misspelt device field": lambda c: c["services"]["ray-worker-0"]["deploy"]["resources"]["reservations"][
        "devices"
    ][0].update(capabilites=["gpu"]),
    "a wrongly typed field": lambda c: c["services"]["server"].update(shm_size=["8gb"]),
    "an unknown top-level key": lambda c: c.update(service={}),
    "a malformed reservation": lambda c: c["services"]["ray-worker-1"]["deploy"]["resources"].update(reservations=[]),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_a_broken_compose_file_is_refused(compose: dict[str, Any], breakage: str) -> None:
    broken = copy.deepcopy(compose)
    BROKEN[breakage](broken)
    with pytest.raises(jsonschema.ValidationError):
        validate_compose(broken)
