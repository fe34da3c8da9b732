"""A user's own network as ONNX, through the real server: every analysis, the refusals, and hostile files."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from onnx import TensorProto, helper, numpy_helper
from torch.nn import functional as F

from effcap.capacity.data.datasets import digits
from effcap.clients.errors import EffcapError
from effcap.clients.spec_args import randomization_spec
from effcap.protos.v1 import artifact_pb2, spec_pb2

from ..onnx_networks import ResNet, export_onnx
from .conftest import digits_spec


def effcap(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "effcap.clients.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """What a user brings: a ResNet trained briefly in their own code, exported as the docs say, and
    a digits subset of theirs as .npz (400 train, 300 test examples: small enough to memorise in seconds)."""
    root = tmp_path_factory.mktemp("user")
    data = digits()
    x, y = torch.from_numpy(data.x_train[:400]), torch.from_numpy(data.y_train[:400])
    np.savez(
        root / "digits.npz", x_train=x.numpy(), y_train=y.numpy(), x_test=data.x_test[:300], y_test=data.y_test[:300]
    )
    torch.manual_seed(0)
    model = ResNet((1, 1), width=16, in_channels=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(6):
        for start in range(0, 400, 50):
            optimizer.zero_grad()
            F.cross_entropy(model(x[start : start + 50]), y[start : start + 50]).backward()
            optimizer.step()
    return export_onnx(model, (1, 8, 8), root / "resnet.onnx"), root / "digits.npz"


def test_an_imported_resnet_memorises_random_labels_through_the_server(client, user_files):
    model_path, data_path = user_files
    model, data = client.upload(model_path), client.upload(data_path)
    assert (
        client.artifacts.GetArtifact(artifact_pb2.GetArtifactRequest(digest=model)).format
        == artifact_pb2.ARTIFACT_FORMAT_ONNX
    )
    # Batches of 64: on 400 examples random labels fit in about 60 epochs (450 steps).
    spec = spec_pb2.AuditSpec(randomization=randomization_spec("true,random", 1, 0.1, 1.0, 64, 300, 1.0))
    operation = client.wait(client.create_audit(model, spec_pb2.DatasetRef(artifact=data), spec).name)
    report = client.report_of(operation)
    assert report.model.family == "graph" and report.model.parameter_count == sum(
        p.numel() for p in ResNet((1, 1), width=16, in_channels=1).parameters()
    )
    imported = report.model.onnx
    assert (
        imported.reference_evaluator.startswith("onnxruntime")
        and imported.values_compared > 10
        and imported.max_abs_difference < 1e-4
    )
    # Six convs (stem, two per block, the projection shortcut), each with its BatchNorm, and the head.
    assert imported.opset >= 17 and imported.export_batch_size == 0 and imported.layers == 6 + 6 + 1
    conditions = {c.label: c for c in report.randomization.conditions}
    assert conditions["random"].fitted_fraction == 1.0 and conditions["random"].train_accuracy.mean == 1.0
    assert abs(conditions["random"].test_accuracy.mean - 0.1) < 0.06  # chance on 10 classes, 300 test examples
    assert conditions["true"].test_accuracy.mean > 0.8


def test_every_analysis_runs_on_an_imported_network_from_the_cli(server, user_files):
    model_path, data_path = user_files
    training = ["--epochs", "3", "--lr", "0.1", "--lr-decay", "1", "--no-progress", "--json"]
    memorization = ["--mem-min-size", "8", "--mem-max-size", "32", "--mem-seeds", "1", "--mem-bisection-steps", "0"]
    args = [
        "--analyses",
        "randomization,memorization,rademacher,compressibility",
        "--conditions",
        "true",
        "--seeds",
        "1",
        *memorization,
        "--rad-draws",
        "2",
        "--rad-radii",
        "0.1",
        "--rad-examples",
        "64",
        "--comp-methods",
        "magnitude_global,structured",
        *training,
    ]
    result = effcap("audit", str(model_path), "--data", str(data_path), "--server", server.address, *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    operators = report["model"]["architecture"]["operators"]
    assert report["model"]["architecture"]["family"] == "graph" and operators["conv"] == operators["batch_norm"] == 6
    assert report["randomization"]["conditions"][0]["trials"] and report["memorization"]["points"]
    assert report["rademacher"]["globalEstimate"]["draws"] == 2
    layers = report["rademacher"]["layers"]
    assert [layer["name"] for layer in layers][:: len(layers) - 1] == ["conv1", "fc"] and all(
        layer["spectral"] > 0 for layer in layers
    )
    assert {point["method"] for point in report["compressibility"]["points"]} == {"magnitude_global", "structured"}
    # The same analysis in-process (--local) gives the same numbers.
    local = effcap(
        "audit",
        str(model_path),
        "--data",
        str(data_path),
        "--local",
        "--analyses",
        "memorization",
        *memorization,
        *training,
    )
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["memorization"]["points"] == report["memorization"]["points"]


def graph(nodes, initializers=None):
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            initializer=[numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    return model


def expect(call, code: str, reason: str, field: str) -> EffcapError:
    with pytest.raises(EffcapError) as info:
        call()
    assert (info.value.code, info.value.reason, info.value.field) == (code, reason, field), str(info.value)
    return info.value


def test_networks_effcap_cannot_translate_are_refused_at_create_audit_naming_the_node(client, tmp_path):
    path = tmp_path / "einsum.onnx"
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"]),
        helper.make_node("Einsum", ["f", "w"], ["y"], name="custom_head", equation="bi,ij->bj"),
    ]
    onnx.save_model(graph(nodes, {"w": np.ones((64, 10), np.float32)}), str(path))
    model = client.upload(path)  # the outline is fine: what is refused is the operator, at CreateAudit
    error = expect(
        lambda: client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), digits_spec("true", 1, 1)),
        "INVALID_ARGUMENT",
        "UNSUPPORTED_OPERATOR",
        "model",
    )
    assert "'custom_head'" in str(error) and "Einsum" in str(error)


def test_external_weights_and_programs_are_refused_at_upload(client, tmp_path):
    onnx.save_model(
        graph([helper.make_node("Flatten", ["x"], ["y"])], {"unused": np.ones((64, 64), np.float32)}),
        str(tmp_path / "ext.onnx"),
        save_as_external_data=True,
        location="w.bin",
        size_threshold=0,
    )
    error = expect(lambda: client.upload(tmp_path / "ext.onnx"), "INVALID_ARGUMENT", "INVALID_ONNX", "chunk")
    assert "external data" in str(error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.Linear(64, 10)), str(tmp_path / "script.pt"))
    error = expect(lambda: client.upload(tmp_path / "script.pt"), "INVALID_ARGUMENT", "PROGRAM_REFUSED", "chunk")
    assert "TorchScript" in str(error) and "torch.onnx.export" in str(error)


def test_mutated_onnx_files_get_named_errors_and_the_server_lives_on(client, server, user_files, tmp_path):
    rng = random.Random(1)
    outcomes = []
    for case in range(12):
        mutant = bytearray(user_files[0].read_bytes())
        if case % 3 == 0:
            mutant = mutant[: rng.randrange(1, len(mutant))]
        else:
            for _ in range(rng.randint(1, 4)):  # in the first 4 KiB: the graph's structure, before the weights
                mutant[rng.randrange(4096)] = rng.randrange(256)
        path = tmp_path / f"mutant{case}.onnx"
        path.write_bytes(bytes(mutant))
        try:
            model = client.upload(path)
            client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), digits_spec("true", 1, 1))
            outcomes.append("accepted")
        except EffcapError as error:
            assert error.code == "INVALID_ARGUMENT" and error.reason and error.field in ("chunk", "model"), str(error)
            outcomes.append(error.reason)
    assert outcomes.count("accepted") < len(outcomes)
    health = health_pb2_grpc.HealthStub(client._channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING and server.process.poll() is None
    assert "Traceback" not in server.log()
