"""deploy/prometheus/scrape-config.yaml against what the server and the manifests do: TLS verified with the CA under a
name the certificate has, an admin key as bearer token, and targets the manifests publish."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.schemas import DEPLOY, load_documents

SCRAPE_CONFIG = DEPLOY / "prometheus" / "scrape-config.yaml"
METRICS_FLAGS = "--metrics-port 9464 --metrics-host 0.0.0.0"


def jobs() -> dict[str, dict[str, Any]]:
    (document,) = load_documents(SCRAPE_CONFIG)
    return {job["job_name"]: job for job in document["scrape_configs"]}


def certificate_names() -> set[str]:
    """The DNS names of the server certificate deploy/README.md makes."""
    (line,) = re.findall(r"subjectAltName=([^\\]+)", (DEPLOY / "README.md").read_text())
    return {entry.removeprefix("DNS:") for entry in line.split(",") if entry.startswith("DNS:")}


@pytest.mark.parametrize("name", ["effcap", "effcap-compose"])
def test_each_job_verifies_tls_and_sends_an_admin_token_from_a_file(name: str) -> None:
    job = jobs()[name]
    assert job["scheme"] == "https"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"].startswith("/")
    assert job["tls_config"]["ca_file"] and job["tls_config"]["server_name"] in certificate_names()
    assert "insecure_skip_verify" not in job["tls_config"]


def test_the_kubernetes_job_keeps_the_metrics_port_of_the_effcap_service() -> None:
    documents = load_documents(DEPLOY / "kubernetes" / "server.yaml")
    service = next(d for d in documents if d["kind"] == "Service" and d["metadata"]["name"] == "effcap")
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    (keep,) = jobs()["effcap"]["relabel_configs"]
    service_name, port_name = keep["regex"].split(";")
    assert service_name == service["metadata"]["name"]
    assert {"name": port_name, "port": 9464, "targetPort": port_name} in service["spec"]["ports"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command = " ".join(container["args"])
    assert METRICS_FLAGS in command and "--tls-cert" in command


def test_the_compose_job_scrapes_the_port_published_on_loopback() -> None:
    (compose,) = load_documents(DEPLOY / "compose.yaml")
    server = compose["services"]["server"]
    assert "127.0.0.1:9464:9464" in server["ports"] and METRICS_FLAGS in " ".join(server["command"])
    assert jobs()["effcap-compose"]["static_configs"] == [{"targets": ["127.0.0.1:9464"]}]


def test_prometheus_verifies_with_the_ca_alone_never_the_servers_key_secret() -> None:
    """The Secret effcap-tls holds the server's private key too: Prometheus gets a CA-only ConfigMap instead."""
    ca_file = jobs()["effcap"]["tls_config"]["ca_file"]
    assert ca_file == "/etc/prometheus/configmaps/effcap-ca/ca.crt"
    for advice in (SCRAPE_CONFIG, DEPLOY.parent / "docs" / "security.md"):
        assert "secrets/effcap-tls" not in advice.read_text(), advice
    made = "kubectl create configmap effcap-ca --from-file=ca.crt=deploy/secrets/ca.crt"
    assert made in (DEPLOY / "README.md").read_text()
