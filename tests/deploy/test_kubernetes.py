"""deploy/kubernetes/ against the Kubernetes JSON schemas and KubeRay's RayCluster schema, offline, and what the
deployment relies on: TLS from Secrets, probes on the gRPC health service, non-root pods, GPU autoscaling bounds."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.schemas import (
    KUBERNETES,
    KUBERNETES_VERSIONS,
    REPOSITORY,
    kubernetes_manifests,
    load_documents,
    validate_kubernetes_object,
    validate_raycluster,
)

SERVER_IMAGE_USER = 10001


def objects() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, document) for path in kubernetes_manifests() for document in load_documents(path)]


def named(kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [d for _, d in objects() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return copy.deepcopy(found)


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """Every pod spec the manifests make: Deployments', the admin Pod's, and each Ray group's."""
    specs = []
    for _, document in objects():
        kind, name = document["kind"], document["metadata"]["name"]
        if kind == "Deployment":
            specs.append((name, document["spec"]["template"]["spec"]))
        elif kind == "Pod":
            specs.append((name, document["spec"]))
        elif kind == "RayCluster":
            specs.append((f"{name} head", document["spec"]["headGroupSpec"]["template"]["spec"]))
            for group in document["spec"]["workerGroupSpecs"]:
                specs.append((f"{name} {group['groupName']}", group["template"]["spec"]))
    return specs


def test_the_operator_applies_what_the_readme_names() -> None:
    names = {path.relative_to(KUBERNETES).as_posix() for path in kubernetes_manifests()}
    assert names == {
        "data-volume.yaml",
        "server.yaml",
        "raycluster.yaml",
        "network-policies.yaml",
        "admin/admin-pod.yaml",
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_built_in_object_is_valid(version: str) -> None:
    checked = 0
    for _, document in objects():
        if document["kind"] == "RayCluster":
            continue
        validate_kubernetes_object(document, version)
        checked += 1
    assert checked == 7  # PVC, ServiceAccount, Deployment, Service, two NetworkPolicies, the admin Pod


def test_the_raycluster_is_valid_for_kuberay() -> None:
    validate_raycluster(named("RayCluster"))


def test_the_server_serves_tls_from_a_secret_and_probes_grpc_health() -> None:
    deployment = named("Deployment", "effcap-server")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = " ".join(container["args"])
    assert "--tls-cert /run/secrets/effcap-tls/tls.crt --tls-key /run/secrets/effcap-tls/tls.key" in command
    assert "--executor ray --ray-address auto" in command and "--insecure" not in command
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert volumes[mounts["/run/secrets/effcap-tls"]["name"]]["secret"]["secretName"] == "effcap-tls"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "effcap health --server 127.0.0.1:50051 --tls-ca /run/secrets/effcap-tls/ca.crt" in " ".join(
            container[probe]["exec"]["command"]
        ), probe
    # Liveness fails only on no answer (exit 2): NOT_SERVING (a full disk) is not cured by a restart.
    assert container["livenessProbe"]["exec"]["command"][-1].endswith("[ $? -ne 2 ]")
    assert deployment["spec"]["strategy"]["type"] == "Recreate" and deployment["spec"]["replicas"] == 1


def test_the_service_exposes_the_server_port() -> None:
    service = named("Service", "effcap")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "effcap-server"}
    assert {port["port"] for port in service["spec"]["ports"]} == {50051, 9464}


@pytest.mark.parametrize("name,spec", pod_specs(), ids=[name for name, _ in pod_specs()])
def test_every_pod_runs_as_the_images_non_root_user(name: str, spec: dict[str, Any]) -> None:
    context = spec["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == SERVER_IMAGE_USER
    for container in spec["containers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("name,spec", pod_specs(), ids=[name for name, _ in pod_specs()])
def test_every_container_requests_resources(name: str, spec: dict[str, Any]) -> None:
    for container in spec["containers"]:
        requests = container["resources"]["requests"]
        assert {"cpu", "memory"} <= set(requests) and "memory" in container["resources"]["limits"]


@pytest.mark.parametrize("name,spec", pod_specs(), ids=[name for name, _ in pod_specs()])
def test_every_pod_mounts_the_data_directory_at_the_same_path(name: str, spec: dict[str, Any]) -> None:
    """Ray tasks open an audit's inputs by their path in the server's data directory."""
    claims = {
        v["name"] for v in spec["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == "effcap-data"
    }
    (container,) = spec["containers"]
    assert [m["mountPath"] for m in container["volumeMounts"] if m["name"] in claims] == ["/data"]


def test_the_data_volume_is_shared_by_every_node() -> None:
    assert named("PersistentVolumeClaim", "effcap-data")["spec"]["accessModes"] == ["ReadWriteMany"]


def test_every_node_runs_one_image() -> None:
    """A Ray cluster needs the same Ray and Python on every node, the server's included."""
    images = {container["image"] for _, spec in pod_specs() for container in spec["containers"]}
    assert images == {"effcap:cuda"}


def test_the_gpu_workers_autoscale_within_bounds() -> None:
    cluster = named("RayCluster")["spec"]
    assert cluster["enableInTreeAutoscaling"] is True
    (group,) = cluster["workerGroupSpecs"]
    assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    (container,) = group["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] >= 1
    assert cluster["headGroupSpec"]["rayStartParams"]["num-gpus"] == "0"


def test_the_raycluster_names_the_ray_the_images_install() -> None:
    """KubeRay picks its probes by rayVersion; a cluster whose Ray differs from the image's is misdescribed."""
    pins = re.findall(r"^ray==(\S+)$", (REPOSITORY / "constraints.txt").read_text(), re.M)
    if not pins:
        pytest.skip("constraints.txt pins no Ray yet (the Ray executor's branch adds the pin)")
    assert named("RayCluster")["spec"]["rayVersion"] == pins[0]


def test_ray_needs_a_token_the_server_has_too() -> None:
    cluster = named("RayCluster")["spec"]
    assert cluster["authOptions"] == {"mode": "token", "secretName": "effcap-ray-auth"}
    (container,) = named("Deployment", "effcap-server")["spec"]["template"]["spec"]["containers"]
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "effcap-ray-auth", "key": "auth_token"}


def test_no_secret_values_are_committed() -> None:
    """Secrets are created by the operator (deploy/README.md); manifests only reference them."""
    assert not [d for _, d in objects() if d["kind"] == "Secret"]


BROKEN_DEPLOYMENT = {
    "a misspelt field": lambda d: d["spec"].update(replica=1),
    "a misspelt container field": lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolice="x"),
    "a port that is not a number": lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
        containerPort="fifty"
    ),
    "no selector": lambda d: d["spec"].pop("selector"),
    "a probe with no handler field": lambda d: d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].update(
        exec={"commands": ["true"]}
    ),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN_DEPLOYMENT))
def test_a_broken_deployment_is_refused(breakage: str) -> None:
    deployment = named("Deployment", "effcap-server")
    BROKEN_DEPLOYMENT[breakage](deployment)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_kubernetes_object(deployment, KUBERNETES_VERSIONS[-1])


BROKEN_RAYCLUSTER = {
    "no maxReplicas": lambda c: c["spec"]["workerGroupSpecs"][0].pop("maxReplicas"),
    "a misspelt bound": lambda c: c["spec"]["workerGroupSpecs"][0].update(minReplica=0),
    "a bound that is not a number": lambda c: c["spec"]["workerGroupSpecs"][0].update(maxReplicas="eight"),
    "an unknown upscaling mode": lambda c: c["spec"]["autoscalerOptions"].update(upscalingMode="Eager"),
    "a misspelt pod field": lambda c: c["spec"]["workerGroupSpecs"][0]["template"]["spec"].update(tolerance=[]),
    "an unknown auth mode": lambda c: c["spec"]["authOptions"].update(mode="password"),
    "a Ray start parameter that is not a string": lambda c: c["spec"]["headGroupSpec"]["rayStartParams"].update(
        **{"num-cpus": 0}
    ),
    "the wrong API version": lambda c: c.update(apiVersion="ray.io/v1alpha1"),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN_RAYCLUSTER))
def test_a_broken_raycluster_is_refused(breakage: str) -> None:
    cluster = named("RayCluster")
    BROKEN_RAYCLUSTER[breakage](cluster)
    with pytest.raises(jsonschema.ValidationError):
        validate_raycluster(cluster)
