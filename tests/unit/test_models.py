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


CIFAR10 = {"input_shape": [3, 32, 32], "num_classes": 10}
IMAGENET = {"input_shape": [3, 224, 224], "num_classes": 1000}


@pytest.mark.parametrize(
    "architecture, parameters",
    [
        # kuangliu/pytorch-cifar's ResNet18 (3x3 stem, no max-pool) on CIFAR-10.
        ({"family": "resnet", **CIFAR10}, 11_173_962),
        # torchvision resnet18 and resnet34 (7x7/2 stem and max-pool), 1000 ImageNet classes.
        ({"family": "resnet", "stem": "imagenet", **IMAGENET}, 11_689_512),
        ({"family": "resnet", "stem": "imagenet", "blocks_per_stage": [3, 4, 6, 3], **IMAGENET}, 21_797_672),
        # WRN-28-10 on CIFAR-10: 36.5M in Zagoruyko and Komodakis's table; the exact count of their PyTorch port.
        ({"family": "wide_resnet", "depth": 28, "widen_factor": 10, **CIFAR10}, 36_479_194),
        # kuangliu/pytorch-cifar's VGG16 and VGG11 (BN, conv biases kept) on CIFAR-10.
        ({"family": "vgg", "config": "16", **CIFAR10}, 14_728_266),
        ({"family": "vgg", "config": "11", **CIFAR10}, 9_231_114),
        # Without BN: Keras' VGG16(include_top=False) conv stack (14,714,688) and a 512 x 10 Linear with bias.
        ({"family": "vgg", "config": "16", "batch_norm": False, **CIFAR10}, 14_714_688 + 5_130),
        # timm vit_tiny_patch16_224 and vit_small_patch16_224.
        ({"family": "vit", **IMAGENET}, 5_717_416),
        ({"family": "vit", "dim": 384, "heads": 6, **IMAGENET}, 22_050_664),
    ],
    ids=["resnet18-cifar", "resnet18", "resnet34", "wrn-28-10", "vgg16-bn", "vgg11-bn", "vgg16", "vit-ti16", "vit-s16"],
)
def test_published_parameter_counts_of_the_follow_up_literatures_networks(architecture, parameters):
    """Counted on the meta device: nothing is allocated, so the 36M-parameter WRN costs no memory or time."""
    model = build_model(parse_architecture(architecture), device="meta")
    assert count_parameters(model) == parameters
    assert all(p.is_meta for p in model.parameters())


DIGITS = {"input_shape": [1, 8, 8]}
TINY = {
    "resnet": {"family": "resnet", "blocks_per_stage": [1, 1], "width": 4, **DIGITS},
    "resnet-imagenet-stem": {"family": "resnet", "stem": "imagenet", "blocks_per_stage": [1], "width": 4, **DIGITS},
    "wide_resnet": {"family": "wide_resnet", "depth": 10, "widen_factor": 2, "stage_widths": [4, 6, 8], **DIGITS},
    "vgg": {"family": "vgg", "config": [8, "M", 12, "M", 16], **DIGITS},
    "vit": {"family": "vit", "patch_size": 2, "dim": 16, "depth": 2, "heads": 2, **DIGITS},
}


@pytest.mark.parametrize("name", list(TINY))
def test_the_new_families_give_logits_and_the_same_init_for_the_same_seed(name):
    spec = parse_architecture({**TINY[name], "num_classes": 7})
    x = torch.randn(3, *spec.input_shape)
    a, b, c = build_model(spec, seed=0), build_model(spec, seed=0), build_model(spec, seed=1)
    assert a(x).shape == (3, 7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a(x), c(x))


def test_the_vit_is_initialised_as_timm_and_deit_initialise_it():
    model = build_model(parse_architecture({"family": "vit", "patch_size": 4, **CIFAR10}), seed=0)
    linear = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Linear)])
    assert linear.std().item() == pytest.approx(0.02, rel=0.01)
    assert all(m.bias.abs().max() == 0 for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert model.pos_embed.std().item() == pytest.approx(0.02, rel=0.1) and model.cls_token.abs().max() < 0.1


def test_resnet_convs_start_from_he_init_with_fan_out():
    model = build_model(parse_architecture({"family": "resnet", **CIFAR10}), seed=0)
    conv = model.layer4[1].conv2  # 512 -> 512, 3x3: fan-out 4,608, std sqrt(2 / 4,608)
    assert conv.weight.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.01)


def test_vit_multiply_adds_count_attentions_products():
    spec = parse_architecture(dict(family="vit", patch_size=4, dim=8, depth=1, heads=2, num_classes=3, **DIGITS))
    tokens, dim, hidden = 2 * 2 + 1, 8, 32
    patches = 4 * dim * (4 * 4)
    linears = tokens * (dim * 3 * dim + dim * dim + dim * hidden + hidden * dim)
    attention = 2 * tokens * tokens * dim  # q kᵀ and softmax(q kᵀ) v
    assert multiply_adds(build_model(spec, device="meta"), (1, 8, 8)) == patches + linears + attention + dim * 3


@pytest.mark.parametrize(
    "architecture, message",
    [
        ({"family": "wide_resnet", "depth": 12}, "6n \\+ 4"),
        ({"family": "wide_resnet", "depth": 10, "widen_factor": 1, "stem_width": 8}, "shortcut is an identity"),
        ({"family": "resnet", "blocks_per_stage": [1, 1], "stage_widths": [4]}, "one width per stage"),
        ({"family": "resnet", "blocks_per_stage": [1, 1], "inner_widths": [4]}, "one width per block"),
        ({"family": "vit", "dim": 10, "heads": 3}, "multiple of heads"),
        ({"family": "vit", "patch_size": 3}, "whole number of 3x3 patches"),
        ({"family": "vgg", "config": ["M"]}, "at least one conv"),
    ],
)
def test_inconsistent_new_family_specs_are_refused_with_the_reason(architecture, message):
    with pytest.raises(InputError, match=message) as info:
        parse_architecture({"input_shape": [3, 16, 16], "num_classes": 10, **architecture})
    assert info.value.field.startswith("spec.architecture")


def test_a_network_whose_last_batchnorm_sees_a_1x1_map_is_accepted():
    """torchvision's ResNet-18 on 32x32 CIFAR images: layer4 runs at 1x1, which a single example in training
    mode could not normalise; the shape check must not mistake that for a too-small input."""
    spec = parse_architecture({"family": "resnet", "stem": "imagenet", **CIFAR10})
    assert build_model(spec, seed=0)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_a_vgg_with_more_pools_than_its_input_allows_is_refused_naming_the_input_shape():
    with pytest.raises(InputError) as info:
        parse_architecture({"family": "vgg", "config": "11", "input_shape": [3, 16, 16], "num_classes": 10})
    assert info.value.field == "spec.architecture.input_shape"
