"""The Rademacher analysis: norm measures and bounds of the checkpoint, and Rademacher estimates.

Everything runs on the first `max_examples` training examples, with every random choice derived
from the audit's seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.measures.bounds import Bound, norm_bounds, rademacher_bound
from effcap.capacity.measures.norms import NormMeasures, norm_measures
from effcap.capacity.measures.rademacher import Estimate, global_rademacher, local_rademacher, sign_draws
from effcap.capacity.models import ArchitectureSpec, build_model
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import RademacherSpec

LOWER_ESTIMATE_NOTE = "Estimates come from an optimiser's supremum over each draw, so they are lower estimates of R̂."


@dataclass(frozen=True)
class RadiusEstimate:
    radius: float
    relative_radius: float
    estimate: Estimate


@dataclass(frozen=True)
class RademacherResult:
    spec: RademacherSpec
    examples: int
    norms: NormMeasures
    global_estimate: Estimate | None
    local: list[RadiusEstimate]
    bounds: list[Bound]


def run_rademacher(
    architecture: ArchitectureSpec,
    checkpoint_state: dict[str, torch.Tensor],
    dataset: Dataset,
    spec: RademacherSpec,
    audit_seed: int,
    device: torch.device,
    progress: AnalysisProgress | None = None,
    engine: EngineOptions = EngineOptions(),
) -> RademacherResult:
    progress = progress or AnalysisProgress()
    n = min(spec.max_examples, len(dataset.x_train))
    x = torch.from_numpy(dataset.x_train[:n]).to(device)
    y = torch.from_numpy(dataset.y_train[:n]).to(device)
    model = build_model(architecture, device=device)
    model.load_state_dict(checkpoint_state)
    units = 2 + len(spec.relative_radii)
    progress.update("rademacher: norms and margins", 0, units, 0.0)
    norms = norm_measures(model, architecture.input_shape, x, y)
    bounds = norm_bounds(norms, dataset.num_classes, spec.delta)
    sigmas = sign_draws(n, spec.draws, audit_seed)
    local = []
    for i, relative in enumerate(spec.relative_radii):
        progress.update(f"rademacher: ball of radius {relative:g}·‖w₀‖", 1 + i, units, (1 + i) / units)
        radius = relative * norms.parameter_norm
        local.append(RadiusEstimate(radius, relative, local_rademacher(model, x, radius, sigmas, spec.ascent_steps, seed=derive_seed(audit_seed, "rademacher-u"))))
    global_estimate = None
    if spec.fit_signs:
        progress.update(f"rademacher: fitting {spec.draws} random sign vectors", units - 1, units, (units - 1) / units)
        global_estimate = global_rademacher(architecture, x, spec.draws, spec.training, audit_seed, engine)
        train_error = 1.0 - _train_accuracy(model, x, y)
        value = rademacher_bound(train_error, 0.5, global_estimate.mean, n, spec.delta)
        bounds.insert(
            0,
            Bound(
                "rademacher_sign_fit",
                value,
                f"L_S + 2L·R̂ + 3√(ln(2/δ)/2n) with the 0-1 loss of sign classifiers (L = 1/2), L_S = {train_error:.4g}, "
                f"R̂ = {global_estimate.mean:.4g} (fitted signs, a lower estimate), n = {n}, δ = {spec.delta:g}",
                "Bartlett and Mendelson 2002; Zhang et al. 2017, section 2.2",
            ),
        )
    progress.update("rademacher: done", units, units, 1.0)
    return RademacherResult(spec, n, norms, global_estimate, local, bounds)


@torch.no_grad()
def _train_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(dim=1) == y).double().mean())
