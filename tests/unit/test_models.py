"""Architecture families: the paper's parameter counts, shapes, multiply-add counts, bad shapes."""

import pytest
import torch

from effcap.capacity.errors import InputError
from effcap.capacity.models import build_model, count_parameters, parse_architecture
from effcap.capacity.models.flops import multiply_adds

CIFAR_CROP = [3, 28, 28]


@pytest.mark.parametrize(
    "architecture, parameters",
    [
        # Zhang et al. 2017, table 1 (3x28x28 inputs, 10 classes).
        ({"family": "mlp", "hidden_sizes": [512, 512, 512]}, 1_735_178),
        ({"family": "mlp", "hidden_sizes": [512]}, 1_209_866),
        ({"family": "alexnet_small"}, 1_387_786),
        ({"family": "inception_small", "batch_norm": False}, 1_649_402),
        # With BatchNorm the convs lose their biases and gain a scale and shift per channel.
        ({"family": "inception_small"}, 1_651_114),
    ],
)
def test_parameter_counts_of_the_papers_models(architecture, parameters):
    spec = parse_architecture({**architecture, "input_shape": CIFAR_CROP, "num_classes": 10})
    assert count_parameters(build_model(spec)) == parameters


def test_inception_with_batchnorm_adds_one_parameter_per_conv_channel():
    without = build_model(parse_architecture({"family": "inception_small", "batch_norm": False, "input_shape": CIFAR_CROP, "num_classes": 10}))
    with_bn = build_model(parse_architecture({"family": "inception_small", "input_shape": CIFAR_CROP, "num_classes": 10}))
    channels = sum(m.out_channels for m in without.modules() if isinstance(m, torch.nn.Conv2d))
    # BatchNorm replaces each conv's bias (one per channel) with a scale and a shift (two per channel).
    assert count_parameters(with_bn) == count_parameters(without) + channels


@pytest.mark.parametrize("blocks, parameters", [(3, 269_722), (9, 853_018)])
def test_cifar_resnets_match_he_et_al(blocks, parameters):
    """ResNet-20 0.27M, ResNet-56 0.85M parameters (He et al. 2016, table 6)."""
    spec = parse_architecture({"family": "resnet20", "blocks_per_stage": blocks, "input_shape": [3, 32, 32], "num_classes": 10})
    model = build_model(spec)
    assert count_parameters(model) == parameters
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("family, shape", [("lenet5", [1, 28, 28]), ("small_cnn", [3, 32, 32]), ("alexnet_small", [3, 32, 32]), ("inception_small", [3, 32, 32])])
def test_families_produce_logits(family, shape):
    spec = parse_architecture({"family": family, "input_shape": shape, "num_classes": 7})
    assert build_model(spec, seed=0)(torch.zeros(3, *shape)).shape == (3, 7)


def test_an_input_too_small_for_the_layers_is_refused_naming_the_field():
    with pytest.raises(InputError) as info:
        parse_architecture({"family": "lenet5", "input_shape": [1, 8, 8], "num_classes": 10})
    assert info.value.field == "spec.architecture.input_shape"


def test_multiply_adds_match_the_layer_arithmetic():
    mlp = parse_architecture({"family": "mlp", "input_shape": [64], "hidden_sizes": [32], "num_classes": 10})
    assert multiply_adds(build_model(mlp), (64,)) == 64 * 32 + 32 * 10
    cnn = parse_architecture({"family": "small_cnn", "input_shape": [3, 8, 8], "channels": [4, 6], "num_classes": 5})
    # conv 3->4 at 8x8, 2x2 pool, conv 4->6 at 4x4, linear 6->5
    assert multiply_adds(build_model(cnn), (3, 8, 8)) == 8 * 8 * 4 * 3 * 9 + 4 * 4 * 6 * 4 * 9 + 6 * 5
