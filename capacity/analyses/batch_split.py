"""How an analysis' trials are cut into trial batches: a deterministic function of the audit, never of the workers.

Stacked trials agree only to float tolerance when stacked differently (trial_batch.py), so every executor
must run the same batches for the same audit to give the same numbers bit for bit. The cut depends only on
the plans, the architecture, the data's shape, the device kind (cpu or cuda) and a cap: trials that share
the inputs (label conditions) and those that carry their own (pixel conditions) are never mixed, each kind
is cut in plan order into runs of at most the engine's stack size (what `run_trials` stacks anyway, so one
machine computes today's numbers), fewer when the memory estimate for the device kind says so, and fewer
when the operator's cap asks for smaller batches to spread an audit over more workers.
"""

from __future__ import annotations

import torch

from effcap.capacity.analyses.trial_batch import LABEL_KINDS, TrialPlan
from effcap.capacity.models import ArchitectureSpec, build_model, count_parameters

GIB = 1 << 30
# What one batch may take on each device kind. A CPU worker shares its host's memory with the server and
# other audits; a GPU worker's batch has a device of its own (20 GiB fits the smallest common training GPUs,
# 24 GiB, with room for the CUDA context). The engine's out-of-memory halving covers a wrong estimate.
BATCH_MEMORY_BYTES = {"cpu": 2 * GIB, "cuda": 20 * GIB}
# Bytes per float32 parameter per trial: weights, gradients, momentum and the stacked copy the engine keeps.
PARAMETER_BYTES = 16
# Bytes per float32 activation per example: the forward value, its saved copy for backward and its gradient.
ACTIVATION_BYTES = 12


def trial_bytes(architecture: ArchitectureSpec, batch_size: int) -> int:
    """Estimated memory one stacked trial needs: parameters and optimiser state plus one minibatch's activations.

    The activations are counted by a forward pass on the meta device (no memory, no arithmetic).
    """
    model = build_model(architecture, device="meta")
    activations = 0

    def count(_module: torch.nn.Module, _inputs: object, output: object) -> None:
        nonlocal activations
        if isinstance(output, torch.Tensor):
            activations += output[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty((1, *architecture.input_shape), device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return PARAMETER_BYTES * count_parameters(model) + ACTIVATION_BYTES * activations * batch_size


def split_trials(
    plans: list[TrialPlan],
    per_trial_bytes: int,
    device_kind: str,
    stack_size: int,
    cap: int | None = None,
) -> list[list[int]]:
    """Indices into `plans`, one list per batch, in plan order within each kind (label kinds first)."""
    budget = BATCH_MEMORY_BYTES.get(device_kind, BATCH_MEMORY_BYTES["cpu"])
    size = max(1, min(stack_size, budget // max(1, per_trial_bytes), cap or stack_size))
    shared = [i for i, p in enumerate(plans) if p.condition.kind in LABEL_KINDS]
    own = [i for i, p in enumerate(plans) if p.condition.kind not in LABEL_KINDS]
    return [group[start : start + size] for group in (shared, own) for start in range(0, len(group), size)]
