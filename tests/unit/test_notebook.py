"""The notebook API run locally: modules and arrays in, a report object out, and the same spec the CLI builds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from effcap.capacity.checkpoint import load_checkpoint
from effcap.capacity.models import build_model, parse_architecture
from effcap.clients.cli import _parser, _spec_from_args, spec_from_options
from effcap.clients.errors import EffcapError
from effcap.clients.policy import load_report
from effcap.notebook import audit
from effcap.notebook.inputs import export_onnx

MLP = {"family": "mlp", "input_shape": [1, 8, 8], "num_classes": 10, "hidden_sizes": [48]}


def _small_cnn_with_batchnorm() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    with torch.no_grad():
        net[1].running_mean.copy_(torch.linspace(-1, 1, 4))
        net[1].running_var.copy_(torch.linspace(0.5, 2, 4))
    return net


def _arrays(n: int = 80, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    return x[: n // 2], rng.integers(0, 10, n // 2), x[n // 2 :], rng.integers(0, 10, n // 2)


def test_a_built_module_is_audited_as_safetensors_with_its_spec_and_its_own_weights() -> None:
    model = build_model(parse_architecture(MLP), seed=0)
    result = audit(model, "builtin:digits", analyses=["weights"], progress=False, threads=1)
    assert result.report.model.family == "mlp"  # not an ONNX graph: the spec travelled with the module
    layers = result.to_dataframe("weights")
    assert list(layers["name"]) == ["hidden.0", "head"]
    expected = float(torch.linalg.matrix_norm(model.hidden[0].weight.detach().double(), ord=2))
    assert layers.loc[0, "spectral_norm"] == pytest.approx(expected, rel=1e-6)
    assert result.metrics()["weights.mean_alpha"] == pytest.approx(result.report.weights.mean_alpha)


def test_any_other_module_goes_as_onnx_and_arrays_as_a_dataset(tmp_path) -> None:
    x_train, y_train, x_test, y_test = _arrays()
    tensors = (torch.from_numpy(x_train), torch.from_numpy(y_train), x_test, y_test)
    result = audit(
        _small_cnn_with_batchnorm(), tensors, analyses="weights,randomization", conditions=["true"], seeds=1, epochs=1,
        progress=False, threads=1,
    )  # fmt: skip
    assert result.report.model.family == "graph"
    assert (result.report.dataset.train_examples, result.report.dataset.test_examples) == (40, 40)
    assert [c.label for c in result.report.randomization.conditions] == ["true"]
    assert len(result.report.weights.layers) == 2
    html = result._repr_html_()
    assert html.startswith("<iframe srcdoc=") and "Weight spectra" in html and "<style>" not in html  # escaped inside
    saved = load_report(result.save(tmp_path / "report.json"))
    assert saved == result.report
    assert result.to_dict()["dataset"]["train_examples"] == 40


def test_the_onnx_export_keeps_the_models_batchnorm_statistics(tmp_path) -> None:
    net = _small_cnn_with_batchnorm()
    before = {name: value.clone() for name, value in net.named_buffers()}
    path = export_onnx(net, (1, 8, 8), tmp_path / "m.onnx")
    initializers = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    np.testing.assert_array_equal(initializers["1.running_mean"], before["1.running_mean"].numpy())
    np.testing.assert_array_equal(initializers["1.running_var"], before["1.running_var"].numpy())
    assert all(torch.equal(value, before[name]) for name, value in net.named_buffers())  # the caller's model untouched
    checkpoint = load_checkpoint(path)
    running = [v for k, v in checkpoint.state_dict.items() if k.endswith("running_mean")]
    assert len(running) == 1 and torch.allclose(running[0], before["1.running_mean"])


def test_the_options_build_the_spec_the_cli_builds() -> None:
    flags = ["audit", "m", "--data", "d", "--analyses", "randomization,weights", "--conditions", "true,random"]
    from_cli = _spec_from_args(_parser().parse_args([*flags, "--seeds", "3", "--epochs", "7", "--seed", "5"]))
    from_api = spec_from_options(["randomization", "weights"], conditions=["true", "random"], seeds=3, epochs=7, seed=5)
    assert from_api == from_cli
    assert from_api.HasField("weights") and from_api.randomization.seeds_per_condition == 3


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (42, "data"),
        ({"x_train": np.zeros((4, 2))}, "data"),
        ("missing.npz", "data"),
        ((np.array([object()] * 4, dtype=object), np.zeros(4)), "data.x_train"),
    ],
)
def test_bad_data_is_refused_naming_the_field(data, field) -> None:
    with pytest.raises(EffcapError) as error:
        audit(build_model(parse_architecture(MLP)), data, analyses="weights", progress=False)
    assert error.value.field == field


def test_unknown_options_and_bad_models_are_refused() -> None:
    with pytest.raises(EffcapError, match="unknown option"):
        audit("missing.safetensors", "builtin:digits", analyses="weights", sedes=3)
    with pytest.raises(EffcapError) as error:
        audit(object(), "builtin:digits", analyses="weights", progress=False)
    assert error.value.field == "model" and "nn.Module" in str(error.value)


def test_weights_alone_need_no_data_and_other_analyses_say_they_do() -> None:
    model = build_model(parse_architecture(MLP), seed=0)
    result = audit(model, analyses="weights", progress=False, threads=1)
    assert not result.report.HasField("dataset") and result.report.weights.layers_fitted == 2
    assert "data none" in repr(result)
    with pytest.raises(EffcapError) as error:
        audit(model, analyses="weights,randomization", progress=False)
    assert error.value.field == "data"


def test_importing_the_api_loads_neither_torch_nor_mlflow() -> None:
    code = "import sys, effcap.notebook, effcap.clients.mlflow_tracking; print(sorted({'torch', 'mlflow', 'pandas'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr
