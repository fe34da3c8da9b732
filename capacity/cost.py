"""How much training an audit asks for, counted before it runs, so a server can refuse what it cannot finish.

The unit is training examples processed (one forward and backward pass of one example), an upper
bound per analysis from its spec and the train split's size: it ignores early stopping, which
only makes audits cheaper. Forward-only work is left out: the per-epoch evaluation passes (about a
third of an epoch each), and compressibility's sweeps, which train nothing unless fine-tuning is
asked for and are bounded by `max_eval_examples` instead. The spec's preset is applied first
(capacity/presets.py), so the count is that of the audit as it will run, learning-rate probe included.
"""

from __future__ import annotations

from effcap.capacity.analyses.learning_rate_probe import CANDIDATE_RATES, probe_epochs
from effcap.capacity.analyses.memorization import budget_steps, size_grid
from effcap.capacity.analyses.memorization_scores import subset_size
from effcap.capacity.engine.trainer import steps_per_epoch
from effcap.capacity.measures.flatness import sharpness_examples
from effcap.capacity.measures.steps_to_loss import steps_to_loss_examples
from effcap.capacity.presets import apply_preset, needs_learning_rate_probe
from effcap.capacity.specs import AuditSpec


def training_examples(spec: AuditSpec, train_examples: int) -> dict[str, int]:
    """Upper bound of training examples processed, per analysis in the spec."""
    n = train_examples
    spec, _ = apply_preset(spec, n)
    cost: dict[str, int] = {}
    if spec.randomization is not None:
        r = spec.randomization
        cost["randomization"] = len(r.conditions) * r.seeds_per_condition * r.training.max_epochs * n
        if needs_learning_rate_probe(spec):
            cost["randomization"] += len(CANDIDATE_RATES) * probe_epochs(n, r.training.batch_size) * n
    if spec.memorization is not None:
        m = spec.memorization
        grid = size_grid(m, n)
        # A size trains budget_steps rounded up to whole epochs of its subset: under one epoch of the largest more.
        steps = budget_steps(m.training, n) + steps_per_epoch(grid[-1], m.training.batch_size)
        cost["memorization"] = (len(grid) + m.bisection_steps) * m.seeds * steps * m.training.batch_size
    if spec.rademacher is not None:
        r = spec.rademacher
        examples = min(n, r.max_examples)
        fitting = r.draws * r.training.max_epochs * examples if r.fit_signs else 0
        # Each radius is ascended twice: in the whole-network ball and in the per-tensor one.
        cost["rademacher"] = fitting + 2 * len(r.relative_radii) * r.draws * r.ascent_steps * examples
        if r.generalization_measures:
            # Jiang et al.'s measures (docs/measures.md): the sharpness ascents and the steps-to-loss training.
            cost["rademacher"] += sharpness_examples(examples) + steps_to_loss_examples(examples, r.training)
    if spec.compressibility is not None:
        c = spec.compressibility
        points = len(c.methods) * (len(c.sparsities) + c.bisection_steps)
        cost["compressibility"] = points * c.finetune_steps * c.finetune.batch_size
    if spec.memorization_scores is not None:
        s = spec.memorization_scores
        cost["memorization_scores"] = s.models * s.training.max_epochs * subset_size(n, s.subset_fraction)
    return cost
