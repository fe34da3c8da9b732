"""Importing ONNX: what is refused and why, the file treated as hostile data, and every analysis' view of a graph.

Ground truth here is the ONNX graph itself (onnxruntime computes it), dense matrices for operator
norms, the unpruned network for structured pruning, and the torch module the graph came from.
"""

from __future__ import annotations

import json
import random

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from effcap.capacity.checkpoint import load_checkpoint, save_checkpoint
from effcap.capacity.compression.structured import structured_prune, unit_graph
from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.strategy import EngineOptions, train_trials
from effcap.capacity.errors import InputError
from effcap.capacity.graphs import ops
from effcap.capacity.graphs.onnx_wire import OnnxLimits
from effcap.capacity.measures.layers import fold_batchnorm, weight_layers
from effcap.capacity.measures.spectral import operator_spectral_norm
from effcap.capacity.models import build_model, parse_architecture, with_num_classes
from effcap.capacity.specs import TrainingSpec

from ..onnx_networks import VGG, MobileNetLike, ResNet, ViT, export_onnx, randomize_batchnorm


def assert_stacked_trains_like_one_by_one(spec, examples: int, batch: int) -> None:
    """Two trials of random digits-shaped data, stacked through vmap and one at a time: the same losses."""
    rng = np.random.default_rng(0)
    inputs = torch.from_numpy(rng.random((examples, 1, 8, 8), dtype=np.float32))
    shared = SharedData(inputs, inputs[:batch], torch.zeros(batch, dtype=torch.long))
    trials = [TrialInputs(seed=s, y_train=torch.from_numpy(rng.integers(0, 10, examples))) for s in range(2)]
    training = TrainingSpec(learning_rate=0.05, batch_size=batch, max_epochs=2)
    stacked, _ = train_trials(spec, shared, trials, training, options=EngineOptions(strategy="vmap"))
    one_by_one, _ = train_trials(spec, shared, trials, training, options=EngineOptions(strategy="sequential"))
    for a, b in zip(stacked, one_by_one):
        # 1e-3: a batched and a per-trial kernel add float32 products in different orders, and six SGD steps
        # through BatchNorm amplify that to ~2e-4 with one thread; a stacking bug moves the loss by far more.
        np.testing.assert_allclose([p.train_loss for p in a.curve], [p.train_loss for p in b.curve], rtol=1e-3)


def write(model, path):
    path.write_bytes(model.SerializeToString())
    return path


def graph_model(nodes, input_shape, initializers=None, opset=17, inputs=None, output="y"):
    graph = helper.make_graph(
        nodes,
        "g",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def small_model():
    """conv → relu → flatten → gemm: a few hundred bytes, a dozen values."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc", "b"], ["y"], name="head", transB=1),
    ]
    initializers = {
        "w": rng.standard_normal((3, 1, 3, 3)).astype(np.float32),
        "fc": rng.standard_normal((4, 27)).astype(np.float32),
        "b": np.zeros(4, np.float32),
    }
    return graph_model(nodes, [1, 3, 3], initializers)


@pytest.fixture(scope="module")
def digits_resnet(tmp_path_factory):
    """A narrow ResNet-18 for 1x8x8 inputs, exported as the docs say: (torch module, ONNX path)."""
    torch.manual_seed(0)
    module = randomize_batchnorm(ResNet((2, 2, 2, 2), width=4, in_channels=1))
    return module, export_onnx(module, (1, 8, 8), tmp_path_factory.mktemp("onnx") / "resnet.onnx")


def refusal(path, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        load_checkpoint(path, **kwargs)
    return info.value


# ---------------------------------------------------------------- refusals


def test_an_unsupported_operator_is_refused_naming_the_node_and_operator(tmp_path):
    nodes = [
        helper.make_node("Einsum", ["x", "x"], ["e"], name="my_einsum", equation="bi,bj->bij"),
        helper.make_node("Flatten", ["e"], ["y"]),
    ]
    error = refusal(write(graph_model(nodes, [3]), tmp_path / "m.onnx"))
    assert error.field == "model" and error.reason == "UNSUPPORTED_OPERATOR"
    assert (
        "'my_einsum'" in error.message and "Einsum" in error.message and "Conv" in error.message
    )  # the supported list follows


@pytest.mark.parametrize(
    "node",
    [
        helper.make_node("FusedConv", ["x"], ["y"], name="custom", domain="com.microsoft"),
        helper.make_node(
            "If",
            ["x"],
            ["y"],
            name="branch",
            then_branch=helper.make_graph([], "t", [], []),
            else_branch=helper.make_graph([], "e", [], []),
        ),
    ],
    ids=["custom-domain", "subgraph"],
)
def test_custom_domains_and_subgraphs_are_refused(node, tmp_path):
    model = graph_model([node], [3])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    error = refusal(write(model, tmp_path / "m.onnx"))
    assert error.reason == "UNSUPPORTED_OPERATOR" and repr(node.name) in error.message


def test_weights_in_external_files_are_refused_before_parsing(tmp_path):
    model = small_model()
    onnx.save_model(
        model,
        str(tmp_path / "m.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (tmp_path / "weights.bin").exists()
    error = refusal(tmp_path / "m.onnx")
    assert error.reason == "INVALID_ONNX" and "external data" in error.message


def test_graphs_over_the_node_and_weight_limits_are_refused_naming_the_limit(tmp_path):
    path = write(small_model(), tmp_path / "m.onnx")
    assert "--max-graph-nodes" in refusal(path, onnx_limits=OnnxLimits(max_nodes=3)).message
    assert "--max-graph-weight-bytes" in refusal(path, onnx_limits=OnnxLimits(max_weight_bytes=200)).message
    assert (
        load_checkpoint(path, onnx_limits=OnnxLimits(max_nodes=4, max_weight_bytes=1000)).architecture.family == "graph"
    )


def test_a_graph_that_baked_its_batch_size_into_a_reshape_is_refused_with_the_export_call(tmp_path):
    module = VGG(11, batch_norm=True, divisor=16, in_channels=1)  # flattens with x.view(x.size(0), -1)
    path = export_onnx(module, (1, 32, 32), tmp_path / "static.onnx", dynamic_batch=False)
    error = refusal(path)
    assert error.reason == "FIXED_BATCH_SIZE" and "dynamic_axes={'input': {0: 'batch'}}" in error.message


def test_a_translation_that_diverges_is_refused_naming_the_first_node_that_differs(tmp_path, monkeypatch):
    """A deliberately wrong Relu (leaky) must be caught at the Relu, not at the logits."""
    leaky = ops.Operator(lambda values, attrs, ctx: [torch.nn.functional.leaky_relu(values[0], 0.1)], None)
    monkeypatch.setitem(ops.OPERATORS, "Relu", leaky)
    error = refusal(write(small_model(), tmp_path / "m.onnx"))
    assert error.reason == "CONVERSION_MISMATCH" and "'relu'" in error.message and "Relu" in error.message


@pytest.mark.parametrize(
    "case, reason",
    [
        ("two-inputs", "UNSUPPORTED_GRAPH"),
        ("integer-input", "UNSUPPORTED_GRAPH"),
        ("not-logits", "UNSUPPORTED_GRAPH"),
        ("nan-weight", "CHECKPOINT_NOT_FINITE"),
        ("unknown-opset", "UNSUPPORTED_OPSET"),
    ],
)
def test_graphs_effcap_cannot_audit_are_refused_with_a_reason(case, reason, tmp_path):
    model = small_model()
    if case == "two-inputs":
        model.graph.input.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3]))
    elif case == "integer-input":
        model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64
    elif case == "not-logits":
        model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [2, 3])
    elif case == "nan-weight":
        model.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.full((3, 1, 3, 3), np.nan, np.float32), "w"))
    else:
        model.opset_import[0].version = 99
    assert refusal(write(model, tmp_path / "m.onnx")).reason == reason


def test_truncated_and_mutated_files_get_a_named_error_never_a_crash(tmp_path):
    """A fuzz of the ingestion path: every mutant is either a valid model or an InputError with a message."""
    data = bytearray(small_model().SerializeToString())
    rng = random.Random(0)
    outcomes = {"accepted": 0, "refused": 0}
    for case in range(160):
        mutant = bytearray(data)
        if case % 4 == 0:
            mutant = mutant[: rng.randrange(1, len(mutant))]
        elif case % 4 == 1:
            for _ in range(rng.randint(1, 6)):
                mutant[rng.randrange(len(mutant))] = rng.randrange(256)
        elif case % 4 == 2:
            position = rng.randrange(len(mutant))
            mutant[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:  # a flip in the first 60 bytes, where the graph's structure is
            mutant[rng.randrange(60)] ^= 1 << rng.randrange(8)
        path = tmp_path / f"mutant{case}.onnx"
        path.write_bytes(bytes(mutant))
        try:
            load_checkpoint(path)
            outcomes["accepted"] += 1
        except InputError as error:
            assert error.field in ("model", "spec.architecture") and error.message and error.reason
            outcomes["refused"] += 1
    assert outcomes["refused"] > 80  # most mutants break the file; the others changed a weight or a name


# ---------------------------------------------------------------- the spec and the engine


def test_an_imported_graph_is_an_architecture_spec_like_any_other(digits_resnet, tmp_path):
    """JSON round trip, a safetensors checkpoint of its own, and training through the engine (vmap = one at a time)."""
    module, path = digits_resnet
    checkpoint = load_checkpoint(path)
    spec = checkpoint.architecture
    assert parse_architecture(json.loads(spec.model_dump_json())) == spec
    save_checkpoint(tmp_path / "resnet.safetensors", spec, checkpoint.state_dict)
    again = load_checkpoint(tmp_path / "resnet.safetensors")
    assert again.architecture == spec and again.onnx is None
    x = torch.randn(4, 1, 8, 8)
    network = build_model(again.architecture)
    network.load_state_dict(again.state_dict)
    torch.testing.assert_close(network.eval()(x), module.eval()(x), rtol=1e-4, atol=1e-5)
    assert_stacked_trains_like_one_by_one(spec, examples=96, batch=32)


def test_a_graph_spec_with_a_bad_node_is_refused_naming_it(digits_resnet):
    data = json.loads(load_checkpoint(digits_resnet[1]).architecture.model_dump_json())
    relu = next(i for i, node in enumerate(data["nodes"]) if node["op"] == "Relu")
    data["nodes"][relu]["op"] = "Frobnicate"
    with pytest.raises(InputError) as info:
        parse_architecture(data)
    assert info.value.field.startswith("spec.architecture") and "Frobnicate" in info.value.message
    data["nodes"][relu]["op"] = "Relu"
    assert data["nodes"][0]["op"] == "conv"
    data["nodes"][0]["attributes"]["in_channels"] = 5  # the conv no longer fits its input
    with pytest.raises(InputError) as info:
        parse_architecture(data)
    assert info.value.field == "spec.architecture.nodes[0]"


# ---------------------------------------------------------------- measures


def _dense(layer: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """The layer's linear map (bias dropped) as a matrix, one basis vector at a time."""
    basis = torch.eye(int(np.prod(input_shape)), dtype=torch.float64).reshape(-1, *input_shape)
    bias = layer.bias
    layer.bias = None
    try:
        with torch.no_grad():
            columns = layer.double()(basis).reshape(len(basis), -1)
    finally:
        layer.bias = bias
    return columns.T


def test_operator_norms_of_imported_convolutions_are_their_dense_maps_top_singular_values(tmp_path):
    """Strided+padded, dilated, grouped and transposed convolutions, as imported from ONNX."""
    rng = np.random.default_rng(0)
    w = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w2"], ["b"], dilations=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("Conv", ["b", "w3"], ["c"], group=2, pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["c", "w4"], ["d"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
        helper.make_node("Flatten", ["d"], ["y"]),
    ]
    initializers = {"w1": w(4, 2, 3, 3), "w2": w(4, 4, 3, 3), "w3": w(4, 2, 3, 3), "w4": w(4, 2, 3, 3)}
    checkpoint = load_checkpoint(write(graph_model(nodes, [2, 6, 6], initializers), tmp_path / "convs.onnx"))
    network = build_model(checkpoint.architecture)
    network.load_state_dict(checkpoint.state_dict)
    layers = weight_layers(network, checkpoint.architecture.input_shape)
    assert [type(layer.module).__name__ for layer in layers] == ["Conv2d", "Conv2d", "Conv2d", "ConvTranspose2d"]
    for layer in layers:
        exact = float(torch.linalg.matrix_norm(_dense(layer.module, layer.input_shape), ord=2))
        assert operator_spectral_norm(layer.module.float(), layer.input_shape) == pytest.approx(exact, rel=1e-4)


def test_batchnorm_folds_into_imported_convolutions_without_changing_the_function(digits_resnet):
    module, path = digits_resnet
    checkpoint = load_checkpoint(path)
    network = build_model(checkpoint.architecture)
    network.load_state_dict(checkpoint.state_dict)
    folded = fold_batchnorm(network)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(6, 1, 8, 8)
    torch.testing.assert_close(folded(x), module.eval()(x), rtol=1e-4, atol=1e-5)


def test_a_graph_gets_a_two_logit_head_for_the_rademacher_estimate(digits_resnet):
    spec = load_checkpoint(digits_resnet[1]).architecture
    binary = with_num_classes(spec, 2)
    assert binary.num_classes == 2 and build_model(binary)(torch.randn(3, 1, 8, 8)).shape == (3, 2)


# ---------------------------------------------------------------- structured pruning


def _plant_dead_units(graph, state: dict[str, torch.Tensor], share: float = 0.25) -> dict[str, torch.Tensor]:
    """Zero the BatchNorm scale and shift (or, without BatchNorm, the weights and bias) of the first `share` of
    every group."""
    state = dict(state)
    for group in graph.groups:
        dead = torch.arange(group.size) < int(group.size * share)
        norms = [w for w in group.writers if f"{w}.running_var" in state]
        for writer in norms or group.writers:
            for suffix in ("weight", "bias"):
                key = f"{writer}.{suffix}"
                if key in state:
                    state[key] = state[key] * ~dead.reshape(-1, *[1] * (state[key].dim() - 1))
    return state


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: ResNet((2, 2, 2, 2), width=8, stem="imagenet"), (3, 32, 32)),
        (lambda: VGG(11, batch_norm=False, divisor=16), (3, 32, 32)),
        (lambda: MobileNetLike(width=8), (3, 16, 16)),
    ],
    ids=["resnet18-residual-streams", "vgg11-flatten", "mobilenet-depthwise"],
)
def test_structured_pruning_of_a_graph_removes_exactly_the_dead_units(make, shape, tmp_path):
    torch.manual_seed(0)
    checkpoint = load_checkpoint(export_onnx(randomize_batchnorm(make()), shape, tmp_path / "m.onnx"))
    spec = checkpoint.architecture
    graph = unit_graph(spec, checkpoint.state_dict)
    state = _plant_dead_units(graph, checkpoint.state_dict)
    pruned = structured_prune(spec, state, 0.25)
    assert all(kept == size - int(size * 0.25) for size, kept in pruned.group_sizes.values())
    full, small = build_model(spec), build_model(pruned.spec)
    full.load_state_dict(state)
    small.load_state_dict(pruned.state)
    x = torch.randn(4, *shape)
    torch.testing.assert_close(small.eval()(x), full.eval()(x), rtol=1e-4, atol=1e-5)
    save_checkpoint(tmp_path / "pruned.safetensors", pruned.spec, pruned.state)
    assert load_checkpoint(tmp_path / "pruned.safetensors").architecture == pruned.spec


def test_a_reshape_constant_naming_the_channels_is_rewritten_when_they_shrink(tmp_path):
    """Exporters that flatten with a constant target ([-1, C·H·W]) must get the new C·H·W."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "target"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    initializers = {
        "w": rng.standard_normal((8, 1, 3, 3)).astype(np.float32),
        "b": np.ones(8, np.float32),
        "target": np.asarray([-1, 8 * 4 * 4], np.int64),
        "fc": rng.standard_normal((3, 128)).astype(np.float32),
    }
    checkpoint = load_checkpoint(write(graph_model(nodes, [1, 4, 4], initializers), tmp_path / "m.onnx"))
    state = _plant_dead_units(
        unit_graph(checkpoint.architecture, checkpoint.state_dict), checkpoint.state_dict, share=0.5
    )
    pruned = structured_prune(checkpoint.architecture, state, 0.5)
    full, small = build_model(checkpoint.architecture), build_model(pruned.spec)
    full.load_state_dict(state)
    small.load_state_dict(pruned.state)
    x = torch.randn(3, 1, 4, 4)
    torch.testing.assert_close(small(x), full(x), rtol=1e-4, atol=1e-5)
    assert [m.in_features for m in small.modules() if isinstance(m, nn.Linear)] == [4 * 4 * 4]


def test_structured_pruning_of_a_vit_is_refused_naming_the_node_that_prevents_it(tmp_path):
    checkpoint = load_checkpoint(export_onnx(ViT(), (3, 16, 16), tmp_path / "vit.onnx"))
    with pytest.raises(InputError) as info:
        unit_graph(checkpoint.architecture, checkpoint.state_dict)
    error = info.value
    assert error.field == "spec.compressibility.methods" and error.reason == "STRUCTURED_PRUNING_UNSUPPORTED"
    # The class token (a parameter of every unit) is concatenated to the patch embeddings' units.
    assert "(Concat) concatenates units with values that are not units" in error.message


def test_a_layernorm_over_the_units_makes_structured_pruning_refuse_by_name(tmp_path):
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("LayerNormalization", ["h", "scale", "shift"], ["n"], name="the_norm"),
        helper.make_node("Gemm", ["n", "w2"], ["y"], transB=1),
    ]
    initializers = {
        "w1": rng.standard_normal((6, 4)).astype(np.float32),
        "b1": np.zeros(6, np.float32),
        "scale": np.ones(6, np.float32),
        "shift": np.zeros(6, np.float32),
        "w2": rng.standard_normal((3, 6)).astype(np.float32),
    }
    checkpoint = load_checkpoint(write(graph_model(nodes, [4], initializers), tmp_path / "m.onnx"))
    with pytest.raises(InputError) as info:
        unit_graph(checkpoint.architecture, checkpoint.state_dict)
    assert "'the_norm' (layer_norm) normalises over the units" in info.value.message


def test_a_trial_batch_of_an_imported_graph_runs_in_another_process_with_the_same_results(digits_resnet, tmp_path):
    """The graph crosses the process boundary as its JSON spec, as any executor would receive it."""
    import subprocess
    import sys

    from effcap.capacity.analyses.randomization import plan_trials
    from effcap.capacity.analyses.trial_batch import (
        DatasetSource,
        PlannedTrial,
        TrialBatch,
        results_from_json,
        run_trial_batch,
    )
    from effcap.capacity.specs import Condition, ConditionKind, RandomizationSpec

    spec = load_checkpoint(digits_resnet[1]).architecture
    training = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=1)
    randomization = RandomizationSpec(
        conditions=[Condition(kind=ConditionKind.RANDOM_LABELS)], seeds_per_condition=2, training=training
    )
    trials = [
        PlannedTrial(condition=p.condition, seed_index=p.seed_index, seed=p.seed) for p in plan_trials(randomization, 3)
    ]
    batch = TrialBatch(
        architecture=json.loads(spec.model_dump_json()),
        dataset=DatasetSource(builtin="digits"),
        training=training,
        trials=trials,
    )
    (tmp_path / "batch.json").write_text(batch.model_dump_json())
    command = ["-m", "effcap.capacity.analyses.trial_batch", str(tmp_path / "batch.json"), str(tmp_path / "out.json")]
    subprocess.run([sys.executable, *command, "--device", "cpu"], check=True, timeout=600)
    remote, _ = results_from_json(json.loads((tmp_path / "out.json").read_text()))
    local, _ = run_trial_batch(batch, torch.device("cpu"))
    assert [r.outcome.curve for r in remote] == [r.outcome.curve for r in local]
    assert remote[0].outcome.curve != remote[1].outcome.curve  # two trials, not one repeated


# ---------------------------------------------------------------- found by a new user's review


class _FreeParameters(nn.Module):
    """A PReLU slope, a layer-scale vector and a class token: trainable tensors no layer owns."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.act = nn.PReLU(8)
        self.gamma = nn.Parameter(torch.full((1, 8, 1, 1), 0.5))
        self.token = nn.Parameter(torch.randn(1, 8, 1, 1))
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv(x)) * self.gamma
        h = torch.cat([h, self.token.expand(x.shape[0], -1, -1, 8)], dim=2)
        return self.fc(h.amax((2, 3)))


def test_free_parameters_train_stacked_and_in_every_analysis(tmp_path):
    """vmap and the Rademacher ascent swap parameters for plain tensors: free parameters must be found anyway."""
    from effcap.capacity.analyses.compressibility import run_compressibility
    from effcap.capacity.analyses.rademacher import run_rademacher
    from effcap.capacity.data.datasets import digits, train_subset
    from effcap.capacity.specs import CompressibilitySpec, RademacherSpec

    torch.manual_seed(0)
    checkpoint = load_checkpoint(export_onnx(_FreeParameters(), (1, 8, 8), tmp_path / "free.onnx"))
    spec = checkpoint.architecture
    assert {p.key for p in spec.parameters} >= {"gamma", "token"}
    assert_stacked_trains_like_one_by_one(spec, examples=64, batch=16)
    data = train_subset(digits(), 64, seed=0)
    cpu = torch.device("cpu")
    quick = TrainingSpec(max_epochs=1)
    rademacher = run_rademacher(
        spec, checkpoint.state_dict, data, RademacherSpec(draws=2, relative_radii=[0.1], ascent_steps=3, max_examples=32,
                                                          training=quick, sharpness=False, ntk_examples=0), 0, cpu
    )  # fmt: skip
    assert rademacher.local[0].estimate.mean > 0
    methods = ["magnitude_global", "quantization"]
    compression = run_compressibility(
        spec, checkpoint.state_dict, data, CompressibilitySpec(methods=methods, sensitivity=False), 0, cpu
    )
    assert {p.method for p in compression.points} == set(methods)


def _prune_or_refuse(module: nn.Module, tmp_path) -> tuple[float | None, InputError | None]:
    """(largest output difference of the network pruned by a quarter, with its dead units planted), or the refusal."""
    torch.manual_seed(0)
    checkpoint = load_checkpoint(export_onnx(module, (1, 8, 8), tmp_path / "m.onnx"))
    try:
        graph = unit_graph(checkpoint.architecture, checkpoint.state_dict)
    except InputError as error:
        return None, error
    state = _plant_dead_units(graph, checkpoint.state_dict)
    pruned = structured_prune(checkpoint.architecture, state, 0.25)
    full, small = build_model(checkpoint.architecture), build_model(pruned.spec)
    full.load_state_dict(state)
    small.load_state_dict(pruned.state)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        return float((small.eval()(x) - full.eval()(x)).abs().max()), None


class _SpatialAttention(nn.Module):
    """CBAM's spatial attention: a one-channel map that multiplies every channel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.attention, self.fc = (
            nn.Conv2d(1, 8, 3, padding=1),
            nn.Conv2d(8, 1, 3, padding=1),
            nn.Linear(8, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return self.fc((torch.sigmoid(self.attention(h)) * h).mean((2, 3)))


class _ReversedChannels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.conv2, self.fc = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(torch.flip(torch.relu(self.conv(x)), [1])).mean((2, 3)))


def test_a_one_channel_map_broadcast_over_the_units_prunes_exactly(tmp_path):
    difference, refusal = _prune_or_refuse(_SpatialAttention(), tmp_path)
    assert refusal is None and difference < 1e-5


def test_reversed_units_are_refused_not_pruned_wrongly(tmp_path):
    difference, refusal = _prune_or_refuse(_ReversedChannels(), tmp_path)
    assert difference is None and "(Slice)" in refusal.message


class _MnistExample(nn.Module):
    """PyTorch's MNIST example ends in log_softmax: its logits are log-probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.fc(torch.flatten(torch.relu(self.conv(x)), 1)), dim=1)


def test_a_head_followed_by_log_softmax_gets_two_logits_and_one_that_cannot_is_refused_up_front(tmp_path):
    from effcap.capacity.measures.rademacher import check_two_logit_head

    spec = load_checkpoint(export_onnx(_MnistExample(), (1, 8, 8), tmp_path / "mnist.onnx")).architecture
    assert build_model(with_num_classes(spec, 2))(torch.randn(3, 1, 8, 8)).shape == (3, 2)
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], transB=1), helper.make_node("Mul", ["h", "k"], ["y"])]
    scaled = {"w": np.ones((4, 3), np.float32), "k": np.asarray([1.0, 2.0, 3.0, 4.0], np.float32)}
    checkpoint = load_checkpoint(write(graph_model(nodes, [3], scaled), tmp_path / "scaled.onnx"))
    with pytest.raises(InputError) as info:
        check_two_logit_head(checkpoint.architecture)
    assert info.value.field == "spec.rademacher.fit_signs" and "--rad-no-fit" in info.value.message


def test_a_graph_takes_its_examples_as_they_are_not_flattened(tmp_path):
    from effcap.capacity.models import check_fits_dataset

    flat = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    spec = load_checkpoint(export_onnx(flat, (64,), tmp_path / "flat.onnx")).architecture
    check_fits_dataset(spec, (64,), 10)
    with pytest.raises(InputError) as info:
        check_fits_dataset(spec, (1, 8, 8), 10)
    assert info.value.reason == "MODEL_DATA_MISMATCH"


def test_what_an_export_did_to_the_network_is_noted_for_the_report(tmp_path):
    """An eval-mode export folds BatchNorm (and may merge equal constants); a final softmax squashes the logits."""
    import warnings

    torch.manual_seed(0)
    model = ResNet((1, 1), width=4, in_channels=1).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.randn(2, 1, 8, 8), str(tmp_path / "eval.onnx"), dynamo=False,
                          input_names=["input"], dynamic_axes={"input": {0: "batch"}})  # fmt: skip
    folded = load_checkpoint(tmp_path / "eval.onnx")
    assert not any(node.op == "batch_norm" for node in folded.architecture.nodes)
    assert any("folds BatchNorm" in note and "TrainingMode.TRAINING" in note for note in folded.onnx.notes)
    softmax = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1))
    squashed = load_checkpoint(export_onnx(softmax, (1, 8, 8), tmp_path / "softmax.onnx"))
    assert any("output is a Softmax" in note for note in squashed.onnx.notes)
    assert not load_checkpoint(export_onnx(_MnistExample(), (1, 8, 8), tmp_path / "mnist.onnx")).onnx.notes
