"""The docs name every family's tensors, and the names given are those the families build (issue 16, defect 15)."""

from __future__ import annotations

import re
from pathlib import Path

from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.models.spec import FAMILIES

ROOT = Path(__file__).parents[2]
# `graph` is what an ONNX import becomes: its names are the exporter's, not a family's.
BUILT_IN = set(FAMILIES) - {"graph"}
# One small spec per family, with BatchNorm where the family has it as an option, so that BN names exist.
SPECS = {
    "mlp": {"input_shape": [1, 8, 8], "hidden_sizes": [8, 8]},
    "lenet5": {"input_shape": [1, 28, 28]},
    "small_cnn": {"input_shape": [3, 32, 32], "channels": [4, 4, 4], "batch_norm": True},
    "alexnet_small": {"input_shape": [3, 28, 28], "conv_channels": [4, 4], "fc_sizes": [8, 8]},
    "inception_small": {"input_shape": [3, 28, 28]},
    "resnet20": {"input_shape": [3, 32, 32]},
    "resnet": {"input_shape": [3, 32, 32], "width": 4},
    "wide_resnet": {"input_shape": [3, 32, 32], "depth": 10, "widen_factor": 1},
    "vgg": {"input_shape": [3, 32, 32], "config": "11", "width_divisor": 16},
    "vit": {"input_shape": [3, 32, 32], "patch_size": 8, "dim": 16, "depth": 1, "heads": 2},
}


def documented_names() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "architectures.md").read_text()
    table = text.split("### Tensor names by family", 1)[1].split("\n\n", 3)[2]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {
        re.match(r"\| `(\w+)`", row).group(1): re.findall(r"`([\w.]+\.\w+|cls_token|pos_embed)`", row.split("|")[2])
        for row in rows
    }


def test_every_family_has_its_tensor_names_documented_and_they_are_real():
    names = documented_names()
    assert set(names) == BUILT_IN == set(SPECS)
    for family, documented in names.items():
        spec = parse_architecture({"family": family, "num_classes": 10, **SPECS[family]}, "spec")
        built = set(build_model(spec, device="meta").state_dict())
        assert len(documented) >= 3, family
        assert set(documented) <= built, (family, sorted(set(documented) - built))


def test_the_readme_says_up_front_which_networks_can_be_audited():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Which networks can be audited", 1)[1].split("\n## ", 1)[0]
    assert readme.index("## Which networks can be audited") < readme.index("## Set-up")
    for family in BUILT_IN:
        assert f"`{family}`" in section, family
    assert "ONNX" in section and "docs/architectures.md#tensor-names-by-family" in section
