"""Structured pruning across BatchNorm, residual adds, concatenations and LRN (issue 5).

Ground truth: units that provably output zero (their writers zeroed, so nothing reaches anyone
downstream) can be removed physically without changing the function, in every family. We kill
exactly the share that pruning removes, in every group, and compare the smaller network's outputs
with the original's.
"""

import pytest
import torch

from effcap.capacity.analyses.compressibility import run_compressibility
from effcap.capacity.checkpoint import load_checkpoint, save_checkpoint
from effcap.capacity.compression.structured import structured_prune, unit_graph
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.models import build_model, count_parameters, parse_architecture
from effcap.capacity.specs import CompressibilitySpec

FRACTION = 0.25
IMAGE = {"input_shape": [3, 16, 16], "num_classes": 10}
ARCHITECTURES = {
    "mlp": {"family": "mlp", "hidden_sizes": [32, 16], **IMAGE},
    "small_cnn": {"family": "small_cnn", "channels": [8, 12], "batch_norm": True, **IMAGE},
    "lenet5": {"family": "lenet5", "input_shape": [1, 28, 28], "num_classes": 10},
    "alexnet_small": {"family": "alexnet_small", **IMAGE},
    "alexnet_small_bn": {"family": "alexnet_small", "batch_norm": True, **IMAGE},
    "inception_small": {"family": "inception_small", **IMAGE},
    "inception_small_no_bn": {"family": "inception_small", "batch_norm": False, **IMAGE},
    "resnet20": {"family": "resnet20", "blocks_per_stage": 2, **IMAGE},
    "vgg": {"family": "vgg", "config": [8, "M", 12, 12, "M", 16], **IMAGE},
    "vgg_no_bn": {"family": "vgg", "config": [8, "M", 12, "M", 16], "batch_norm": False, **IMAGE},
    "resnet": {"family": "resnet", "blocks_per_stage": [2, 1, 2], "width": 8, **IMAGE},
    "resnet_imagenet_stem": {"family": "resnet", "stem": "imagenet", "blocks_per_stage": [1, 2], "width": 8, **IMAGE},
    # k = 2: stage 1 starts with a projection, so the stem is a group of its own; k = 1: the stem writes
    # stage 1's stream.
    "wide_resnet": {"family": "wide_resnet", "depth": 16, "widen_factor": 2, "stage_widths": [8, 12, 16], **IMAGE},
    "wide_resnet_k1": {"family": "wide_resnet", "depth": 10, "widen_factor": 1, "stage_widths": [16, 12, 16], **IMAGE},
}


def randomised_model(arch: dict):
    """A model whose BatchNorms have non-trivial statistics and affine parameters (eval mode)."""
    spec = parse_architecture(arch)
    model = build_model(spec, seed=0).eval()
    generator = torch.Generator().manual_seed(1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key, value in state.items():
        if key.endswith(("running_var", "weight")) and value.ndim == 1:  # BatchNorm scale and variance
            state[key] = torch.rand(value.shape, generator=generator) + 0.5
        elif key.endswith(("running_mean", "bias")) and value.ndim == 1:
            state[key] = torch.randn(value.shape, generator=generator) * 0.1
    return spec, state


def kill_units(spec, state, reader_norms=True):
    """Zero the writers of `FRACTION` of every group's units, and the affine parameters of the BatchNorms
    that read them in pre-activation networks (else relu(β − γμ/σ) of a zero channel reaches the next conv);
    returns the dead units per group."""
    graph = unit_graph(spec, state)
    norms = graph.reader_norms() if reader_norms else {}
    dead: dict[str, set[int]] = {}
    for group in graph.groups:
        count = group.size - max(1, round(group.size * (1 - FRACTION)))
        if group.copies is None:
            candidates = range(group.size)
        else:  # a residual unit is dead only if what its shortcut copies is dead too
            source, sources = group.copies
            candidates = [u for u in range(group.size) if sources[u] == -1 or sources[u] in dead[source]]
        dead[group.name] = set(list(candidates)[1 : count + 1])  # not unit 0: removal need not be a prefix
        assert len(dead[group.name]) == count
        rows = torch.tensor(sorted(dead[group.name]), dtype=torch.long)
        for writer in (*group.writers, *(norm for norm, read in norms.items() if read == group.name)):
            for suffix in ("weight", "bias"):
                if f"{writer}.{suffix}" in state:
                    state[f"{writer}.{suffix}"][rows] = 0
    return dead


def outputs(spec, state, x):
    model = build_model(spec).eval()
    model.load_state_dict(state)
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_removing_dead_units_keeps_the_function_in_every_family(name):
    spec, state = randomised_model(ARCHITECTURES[name])
    dead = kill_units(spec, state)
    pruned = structured_prune(spec, state, FRACTION)
    x = torch.randn(16, *spec.input_shape, generator=torch.Generator().manual_seed(2))
    before, after = outputs(spec, state, x), outputs(pruned.spec, pruned.state, x)
    assert before.abs().max() > 0.1  # a live network, not a dead one
    assert {g: size - kept for g, (size, kept) in pruned.group_sizes.items()} == {g: len(units) for g, units in dead.items()}
    if spec.family == "alexnet_small":
        # LRN normalises over 9 neighbouring channels: removing a zero channel brings a farther
        # neighbour into each window, a small change of the denominators (alpha = 1e-3).
        torch.testing.assert_close(after, before, rtol=1e-3, atol=1e-3)
    else:
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert count_parameters(build_model(pruned.spec)) < count_parameters(build_model(spec))
    assert parse_architecture(pruned.spec.model_dump(mode="json")) == pruned.spec  # a valid spec of the same family


def test_a_pruned_resnet_keeps_its_shortcut_copies_and_round_trips_as_a_checkpoint(tmp_path):
    spec, state = randomised_model(ARCHITECTURES["resnet20"])
    kill_units(spec, state)
    pruned = structured_prune(spec, state, FRACTION)
    stage1, stage2 = pruned.spec.shortcut_sources
    assert pruned.spec.stage_widths == (12, 24, 48) and len(pruned.spec.inner_widths) == 6
    # Live copied channels keep their copies (renumbered); only dead sources or padding read nothing.
    assert sorted(s for s in stage1 if s >= 0) == list(range(12)) and sum(s >= 0 for s in stage2) == 24
    path = tmp_path / "pruned.safetensors"
    save_checkpoint(path, pruned.spec, pruned.state)
    loaded = load_checkpoint(path)
    assert loaded.architecture == pruned.spec
    x = torch.randn(4, *spec.input_shape)
    torch.testing.assert_close(outputs(loaded.architecture, loaded.state_dict, x), outputs(spec, state, x), rtol=1e-5, atol=1e-5)


def test_pruning_live_units_keeps_the_same_share_of_every_group_and_runs():
    spec, state = randomised_model(ARCHITECTURES["inception_small"])
    pruned = structured_prune(spec, state, 0.5)
    assert all(kept == max(1, round(size / 2)) for size, kept in pruned.group_sizes.values())
    assert pruned.spec.conv_widths == tuple(kept for _, kept in pruned.group_sizes.values())
    assert outputs(pruned.spec, pruned.state, torch.randn(2, *spec.input_shape)).shape == (2, 10)


def test_resnet_shortcut_sources_are_validated_against_the_stage_widths():
    from effcap.capacity.errors import InputError

    arch = {**ARCHITECTURES["resnet20"], "stage_widths": [8, 4, 4]}
    with pytest.raises(InputError, match="non-decreasing"):
        parse_architecture(arch)
    with pytest.raises(InputError, match=r"shortcut_sources\[0\] needs 4 entries"):
        parse_architecture({**arch, "shortcut_sources": [[0, 1, 2], [0, 1, 2, 3]]})
    spec = parse_architecture({**arch, "shortcut_sources": [[7, -1, 0, 3], [0, 1, 2, 3]]})
    assert outputs(spec, build_model(spec, seed=0).state_dict(), torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_the_structured_sweep_runs_on_a_resnet_and_pays_for_the_kept_sets_in_bits():
    spec, state = randomised_model(ARCHITECTURES["resnet20"])
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(64, 3, 16, 16, generator=generator).numpy()
    y = torch.randint(0, 10, (64,), generator=generator).numpy()
    data = Dataset(name="noise", x_train=x, y_train=y, x_test=x, y_test=y, num_classes=10)
    run = CompressibilitySpec(methods=["structured"], sparsities=[0.0, 0.5], bisection_steps=0, sensitivity=False, train_set_size=64)
    result = run_compressibility(spec, state, data, run, 0, torch.device("cpu"))
    dense, half = sorted((p for p in result.points if p.method == "structured"), key=lambda p: p.level)
    assert dense.accuracy == result.baseline_accuracy and dense.compression_ratio == pytest.approx(1.0)
    assert half.nonzero_parameters < dense.nonzero_parameters / 3  # both sides of most convs halve
    assert half.code_bits > 32 * half.nonzero_parameters  # the kept sets cost bits too
    assert half.measured_speedup > 0
    from effcap.service.codec import compressibility_to_proto

    [summary] = [m for m in compressibility_to_proto(result).methods if m.method == "structured"]
    at_s_star = next(p for p in result.points if p.method == "structured" and p.level == summary.sparsity)
    assert summary.compression_ratio == pytest.approx(at_s_star.compression_ratio)  # measured, not 1/(1 - s*)
    assert half.compression_ratio > 3 > 1 / (1 - half.level)



def test_shortcut_channel_runs_copy_exactly_what_a_gather_would():
    from effcap.capacity.models.resnet import channel_runs, copy_channels
    from effcap.capacity.models.spec import option_a_sources

    assert channel_runs(option_a_sources(16, 32)) == ((-1, 8), (0, 16), (-1, 8))
    sources = (3, 4, -1, -1, 0, 2, 3, 5, -1, 1)
    assert channel_runs(sources) == ((3, 2), (-1, 2), (0, 1), (2, 2), (5, 1), (-1, 1), (1, 1))
    x = torch.randn(2, 6, 3, 3)
    for shortcut in (sources, (-1, -1), (2, 3, 4), (-1, 0)):
        gathered = torch.cat([x, torch.zeros(2, 1, 3, 3)], dim=1)[:, [s if s >= 0 else 6 for s in shortcut]]
        assert torch.equal(copy_channels(x, channel_runs(shortcut)), gathered)


@pytest.mark.parametrize("name", ["vgg", "resnet", "wide_resnet", "wide_resnet_k1"])
def test_pruned_networks_of_the_new_families_round_trip_as_checkpoints(name, tmp_path):
    spec, state = randomised_model(ARCHITECTURES[name])
    kill_units(spec, state)
    pruned = structured_prune(spec, state, FRACTION)
    save_checkpoint(tmp_path / "pruned.safetensors", pruned.spec, pruned.state)
    loaded = load_checkpoint(tmp_path / "pruned.safetensors")
    assert loaded.architecture == pruned.spec and loaded.architecture.family == spec.family
    x = torch.randn(4, *spec.input_shape)
    after = outputs(loaded.architecture, loaded.state_dict, x)
    torch.testing.assert_close(after, outputs(spec, state, x), rtol=1e-5, atol=1e-5)


def test_a_pruned_wide_resnet_keeps_its_shortcut_structure_and_sizes():
    spec, state = randomised_model(ARCHITECTURES["wide_resnet"])
    pruned = structured_prune(spec, state, 0.5)
    assert (pruned.spec.stem_width, pruned.spec.stage_widths) == (8, (4, 6, 8))
    assert pruned.spec.inner_widths == (4, 4, 6, 6, 8, 8) and pruned.spec.widen_factor == spec.widen_factor
    assert pruned.state["layer1.0.shortcut.weight"].shape == (4, 8, 1, 1)
    # The BatchNorms that read a stream are cut with it: each block's bn1 and the final bn.
    assert pruned.state["layer2.1.bn1.running_var"].shape == (6,) and pruned.state["bn.weight"].shape == (8,)


def test_a_pre_activation_stream_unit_is_read_through_the_next_batchnorm():
    """Zeroing only a WRN stream's writers leaves relu(β − γμ/σ) in the next conv's input: the pruned
    network then differs, which is why the graph cuts those BatchNorms with the stream (and the test above
    zeroes them)."""
    spec, state = randomised_model(ARCHITECTURES["wide_resnet"])
    kill_units(spec, state, reader_norms=False)
    pruned = structured_prune(spec, state, FRACTION)
    x = torch.randn(8, *spec.input_shape, generator=torch.Generator().manual_seed(2))
    assert (outputs(pruned.spec, pruned.state, x) - outputs(spec, state, x)).abs().max() > 1e-3


def test_the_vit_is_refused_for_structured_pruning_naming_the_methods_entry():
    from effcap.capacity.compression.structured import check_structured_supported
    from effcap.capacity.errors import InputError

    spec = parse_architecture({"family": "vit", "patch_size": 4, "dim": 8, "depth": 1, "heads": 2, **IMAGE})
    with pytest.raises(InputError, match="LayerNorm") as info:
        unit_graph(spec, build_model(spec).state_dict())
    assert (info.value.field, info.value.reason) == ("spec.compressibility.methods", "STRUCTURED_PRUNING_UNSUPPORTED")
    with pytest.raises(InputError) as info:
        check_structured_supported(spec, ["magnitude_global", "structured"])
    assert info.value.field == "spec.compressibility.methods[1]"
    assert info.value.reason == "STRUCTURED_PRUNING_UNSUPPORTED"
    check_structured_supported(spec, ["magnitude_global", "quantization"])  # the other methods apply
    check_structured_supported(parse_architecture(ARCHITECTURES["wide_resnet"]), ["structured"])
