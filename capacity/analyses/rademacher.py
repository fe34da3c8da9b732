"""The Rademacher analysis: norm measures and bounds of the checkpoint, and Rademacher estimates.

Everything runs on the first `max_examples` training examples, with every random choice derived
from the audit's seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.heap import release_freed_memory
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.engine.trainer import evaluate
from effcap.capacity.measures.bounds import Bound, norm_bounds, rademacher_bound
from effcap.capacity.measures.flatness import Flatness, pac_bayes_flatness, sharpness_flatness
from effcap.capacity.measures.generalization_measures import (
    GeneralizationMeasure,
    generalization_measures,
    init_distances,
    weights_squared_norm,
)
from effcap.capacity.measures.layers import fold_batchnorm
from effcap.capacity.measures.norms import DistanceFromInit, NormMeasures, distance_from_init, norm_measures
from effcap.capacity.measures.ntk import ntk_complexity, ntk_gram
from effcap.capacity.measures.pac_bayes import BOUND_SAMPLES, gaussian_pac_bayes
from effcap.capacity.measures.rademacher import Estimate, global_rademacher, local_rademacher_radii, sign_draws
from effcap.capacity.measures.sharpness import Sharpness, perturbed_error, sharpness
from effcap.capacity.measures.steps_to_loss import constant_rate, steps_to_loss
from effcap.capacity.measures.topology import chain_caveat
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
class NtkComplexity:
    examples: int
    true_labels: float
    random_labels: float


@dataclass(frozen=True)
class RademacherResult:
    spec: RademacherSpec
    examples: int
    norms: NormMeasures
    global_estimate: Estimate | None
    local: list[RadiusEstimate]
    # Layer-wise Frobenius balls ‖W − W₀‖_F ≤ r·‖W₀‖_F for every parameter tensor.
    local_per_layer: list[RadiusEstimate]
    bounds: list[Bound]
    sharpness: Sharpness | None
    magnitude_aware_sharpness: Sharpness | None
    ntk: NtkComplexity | None
    distance_from_init: DistanceFromInit | None
    # Jiang et al. (2020)'s measures, empty unless spec.generalization_measures.
    generalization_measures: list[GeneralizationMeasure] = field(default_factory=list)


def run_rademacher(
    architecture: ArchitectureSpec,
    checkpoint_state: dict[str, torch.Tensor],
    dataset: Dataset,
    spec: RademacherSpec,
    audit_seed: int,
    device: torch.device,
    progress: AnalysisProgress | None = None,
    engine: EngineOptions = EngineOptions(),
    initial_state: dict[str, torch.Tensor] | None = None,
) -> RademacherResult:
    progress = progress or AnalysisProgress()
    n = min(spec.max_examples, len(dataset.x_train))
    x = torch.from_numpy(dataset.x_train[:n]).to(device)
    y = torch.from_numpy(dataset.y_train[:n]).to(device)
    model = build_model(architecture, device=device)
    model.load_state_dict(checkpoint_state)
    units = 4
    progress.update("rademacher: norms and margins", 0, units, 0.0)
    norms = norm_measures(model, architecture.input_shape, x, y)
    bounds = norm_bounds(norms, dataset.num_classes, spec.delta, chain_caveat(architecture))
    sigmas = sign_draws(n, spec.draws, audit_seed)
    u_seed = derive_seed(audit_seed, "rademacher-u")
    relative_radii = list(spec.relative_radii)
    progress.update(f"rademacher: balls of {len(relative_radii)} radii about w₀, {spec.draws} draws each", 1, units, 1 / units)
    radii = [relative * norms.parameter_norm for relative in relative_radii]
    estimates = local_rademacher_radii(model, x, radii, sigmas, spec.ascent_steps, seed=u_seed)
    local = [RadiusEstimate(r, relative, e) for r, relative, e in zip(radii, relative_radii, estimates)]
    progress.update("rademacher: layer-wise balls about w₀", 2, units, 2 / units)
    estimates = local_rademacher_radii(model, x, relative_radii, sigmas, spec.ascent_steps, seed=u_seed, per_tensor=True)
    per_layer = [RadiusEstimate(relative, relative, e) for relative, e in zip(relative_radii, estimates)]
    release_freed_memory()  # the ascents' stacked activations, before the trainings and the NTK Gram allocate
    global_estimate = None
    if spec.fit_signs:
        progress.update(f"rademacher: fitting {spec.draws} random sign vectors", units - 1, units, (units - 1) / units)
        global_estimate = global_rademacher(architecture, x, spec.draws, spec.training, audit_seed, engine)
        train_error = 1.0 - evaluate(model, x, y)[1]
        value = rademacher_bound(train_error, 0.5, global_estimate.mean, n, spec.delta)
        bounds.insert(
            0,
            Bound(
                "rademacher_sign_fit",
                value,
                f"An estimate, not a bound: L_S + 2L·R̂ + 3√(ln(2/δ)/2n) with the 0-1 loss of sign classifiers "
                f"(L = 1/2), L_S = {train_error:.4g} (the K-class error, while R̂ is that of two-class sign "
                f"classifiers: no multi-class reduction), R̂ = {global_estimate.mean:.4g} (an optimiser's lower "
                f"estimate of a supremum, where a bound needs an upper one), n = {n}, δ = {spec.delta:g}",
                "Bartlett and Mendelson 2002; Zhang et al. 2017, section 2.2",
            ),
        )
    flat, flat_magnitude = None, None
    if spec.sharpness:
        progress.update("rademacher: sharpness (bisection on the weight-noise scale)", units - 1, units, (units - 1) / units)
        folded = fold_batchnorm(model)
        flat = sharpness(folded, x, y, seed=derive_seed(audit_seed, "sharpness"))
        flat_magnitude = sharpness(folded, x, y, magnitude_aware=True, seed=derive_seed(audit_seed, "sharpness-magnitude"))
        bounds.append(_sharpness_bound(folded, x, y, flat, n, spec.delta, derive_seed(audit_seed, "pac-bayes-samples")))
    ntk = None
    if spec.ntk_examples:
        progress.update("rademacher: NTK complexity at initialisation", units - 1, units, (units - 1) / units)
        release_freed_memory()  # the trainings' and sharpness samples' freed memory
        ntk = _ntk(architecture, dataset, min(spec.ntk_examples, len(dataset.x_train)), audit_seed, device)
        release_freed_memory()
    distance, initial = None, None
    if initial_state is not None:
        initial = build_model(architecture, device=device)
        initial.load_state_dict(initial_state)
        distance = distance_from_init(model, initial, architecture.input_shape)
    catalogue = []
    if spec.generalization_measures:
        progress.update("rademacher: Jiang et al.'s generalisation measures", units - 1, units, (units - 1) / units)
        catalogue = _generalization_measures(architecture, model, initial, x, y, norms, spec, audit_seed, device)
    progress.update("rademacher: done", units, units, 1.0)
    return RademacherResult(
        spec, n, norms, global_estimate, local, per_layer, bounds, flat, flat_magnitude, ntk, distance, catalogue
    )


def _generalization_measures(
    architecture: ArchitectureSpec,
    model: torch.nn.Module,
    initial: torch.nn.Module | None,
    x: torch.Tensor,
    y: torch.Tensor,
    norms: NormMeasures,
    spec: RademacherSpec,
    audit_seed: int,
    device: torch.device,
) -> list[GeneralizationMeasure]:
    """Flatness on the folded checkpoint; steps to cross-entropy 0.1 from the initial checkpoint if given, else
    from a seeded fresh initialisation, with the spec's training at a constant rate."""
    folded = fold_batchnorm(model)
    flatness: dict[str, Flatness] = {}
    for noise, suffix in (("isotropic", ""), ("magnitude", ".mag")):
        seed = derive_seed(audit_seed, "jiang-pacbayes", noise)
        flatness[f"pacbayes{suffix}.flatness"] = pac_bayes_flatness(folded, x, y, noise=noise, seed=seed)
        seed = derive_seed(audit_seed, "jiang-sharpness", noise)
        flatness[f"sharpness{suffix}.flatness"] = sharpness_flatness(folded, x, y, noise=noise, seed=seed)
    start = build_model(architecture, seed=derive_seed(audit_seed, "jiang-steps-init"), device=device)
    if initial is not None:
        start.load_state_dict(initial.state_dict())
    steps = steps_to_loss(start, x, y, constant_rate(spec.training), derive_seed(audit_seed, "jiang-steps"))
    distances = init_distances(model, initial, architecture.input_shape) if initial is not None else None
    parameter_norm = weights_squared_norm(folded, architecture.input_shape)
    return generalization_measures(norms, parameter_norm, flatness, steps, distances)


def _sharpness_bound(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, flat: Sharpness, n: int, delta: float, seed: int
) -> Bound:
    """The PAC-Bayes bound at the σ the sharpness search found, with the search and the sampling paid for."""
    weights_squared = float(sum((p.detach().double() ** 2).sum() for p in model.parameters()))
    sampled = perturbed_error(model, x, y, flat.sigma, BOUND_SAMPLES, seed) if flat.sigma > 0 else 1.0
    b = gaussian_pac_bayes(sampled, BOUND_SAMPLES, flat.sigma, weights_squared, flat.grid_size, n, delta)
    return Bound(
        "pac_bayes_sharpness",
        b.kl,
        f"kl⁻¹(ê⁺, (KL + ln(2√n·2|G|/δ))/n) with ê⁺ = kl⁻¹(ê_m, ln(4/δ)/m) = {b.error_upper:.4g} (the "
        f"Monte-Carlo error, paid), ê_m = {b.sampled_error:.4g} over m = {b.samples} fresh draws, "
        f"KL = ‖w‖²/(2σ²) = {b.divergence:.4g} (posterior N(w, σ²I), prior N(0, σ²I)), σ = {flat.sigma:.4g} "
        f"searched on the data over |G| = {b.grid_size} values (union bound paid), n = {n}, δ = {delta:g}; "
        f"Pinsker form {b.pinsker:.4g}. Bounds the stochastic classifier Q, not the checkpoint: the margin "
        "derandomisation (Neyshabur et al. 2018, lemma 1) needs the noise to move every input's outputs by "
        "< γ/4 with probability ≥ 1/2, which samples cannot certify",
        "McAllester 1999; Langford and Caruana 2001; Maurer 2004; Dziugaite and Roy 2017; Jiang et al. 2020, section C",
        bounds_on="the posterior Q = N(w, σ²I)",
        fully_paid=True,
    )


def _ntk(architecture: ArchitectureSpec, dataset: Dataset, n: int, audit_seed: int, device: torch.device) -> NtkComplexity:
    """The kernel of a fresh initialisation; true labels against random labels on the same inputs."""
    x = torch.from_numpy(dataset.x_train[:n]).to(device)
    gram = ntk_gram(build_model(architecture, seed=derive_seed(audit_seed, "ntk-init"), device=device), x, seed=derive_seed(audit_seed, "ntk-u"))
    random_labels = torch.from_numpy(np.random.default_rng(derive_seed(audit_seed, "ntk-labels")).integers(0, dataset.num_classes, n))
    return NtkComplexity(
        n,
        ntk_complexity(gram, torch.from_numpy(dataset.y_train[:n]), dataset.num_classes),
        ntk_complexity(gram, random_labels, dataset.num_classes),
    )

