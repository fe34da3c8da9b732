"""Whether the chain-of-layers bounds hold for an architecture.

The Golowich, Bartlett and Neyshabur bounds are proved for chains x ↦ W_d φ(… φ(W_1 x)): one layer feeds
the next. A residual addition (ResNets) adds an identity path the products of per-layer norms do not
count, a concatenation (Inception) runs layers side by side, and attention (ViT) multiplies activations;
for none of these is the chain theorem's value a bound as stated, so the report says so beside it. The
path norm, computed by the squared forward pass, does sum every input-to-output path through additions
and concatenations, so it is not affected.
"""

from __future__ import annotations

from effcap.capacity.models import ArchitectureSpec

CHAIN_FAMILIES = frozenset({"mlp", "lenet5", "small_cnn", "alexnet_small", "vgg"})
_STRUCTURE = {
    "resnet20": "residual additions (skip connections)",
    "resnet": "residual additions (skip connections)",
    "wide_resnet": "residual additions (skip connections)",
    "inception_small": "concatenated parallel branches",
    "vit": "residual additions and attention, which multiplies activations",
}
# Operators of an imported graph that make it more than a chain.
_BRANCHING_OPS = frozenset({"Add", "Sum", "Sub", "Concat", "Mul", "MatMul", "Div"})


def chain_caveat(architecture: ArchitectureSpec) -> str | None:
    """A sentence for the chain bounds' inputs when the architecture is not a chain; None when it is."""
    if architecture.family in CHAIN_FAMILIES:
        return None
    if architecture.family == "graph":
        ops = sorted({node.op for node in architecture.nodes if node.op in _BRANCHING_OPS})
        if not ops:
            return None
        structure = f"operators that join or multiply paths ({', '.join(ops)})"
    else:
        structure = _STRUCTURE.get(architecture.family, "a structure other than a chain")
    return (
        f"Proved for chains of layers; this {architecture.family} network has {structure}, where the product of "
        "per-layer norms does not bound it as stated: not a bound here."
    )
