"""How much training an audit asks for, counted before it runs, so a server can refuse what it cannot finish.

The unit is training examples processed (one forward and backward pass of one example), an upper
bound per analysis from its spec and the train split's size: it ignores early stopping, which
only makes audits cheaper. Evaluation passes are left out; they cost about a third of an epoch each.
"""

from __future__ import annotations

from effcap.capacity.analyses.memorization import budget_steps, geometric_grid
from effcap.capacity.specs import AuditSpec


def training_examples(spec: AuditSpec, train_examples: int) -> dict[str, int]:
    """Upper bound of training examples processed, per analysis in the spec."""
    n = train_examples
    cost: dict[str, int] = {}
    if spec.randomization is not None:
        r = spec.randomization
        cost["randomization"] = len(r.conditions) * r.seeds_per_condition * r.training.max_epochs * n
    if spec.memorization is not None:
        m = spec.memorization
        largest = min(m.max_subset_size or n, n)
        sizes = len(geometric_grid(min(m.min_subset_size, largest), largest, m.growth_factor)) + m.bisection_steps
        cost["memorization"] = sizes * m.seeds * budget_steps(m.training, n) * m.training.batch_size
    if spec.rademacher is not None:
        r = spec.rademacher
        examples = min(n, r.max_examples)
        fitting = r.draws * r.training.max_epochs * examples if r.fit_signs else 0
        # Each radius is ascended twice: in the whole-network ball and in the per-tensor one.
        cost["rademacher"] = fitting + 2 * len(r.relative_radii) * r.draws * r.ascent_steps * examples
    if spec.compressibility is not None:
        c = spec.compressibility
        points = len(c.methods) * (len(c.sparsities) + c.bisection_steps)
        cost["compressibility"] = points * c.finetune_steps * c.finetune.batch_size
    return cost
