"""The `weights` analysis: per-layer spectra of the checkpoint's weights, with no data and no training.

Every Linear and convolution layer (transposed ones included) in module order. A Linear's matrix is its
weight W (out × in). A convolution is analysed as WeightWatcher does by default: its kernel
(c_out, c_in/groups, k₁, …) split into one (c_out × c_in/groups) matrix per kernel position, whose
eigenvalues are pooled into the layer's ESD. Weights are used as stored (BatchNorm is not folded in),
since the question is how training shaped each matrix, not what function the network computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.measures.layers import WEIGHT_LAYERS
from effcap.capacity.measures.weight_spectra import SpectrumSummary, eigenvalues_of_gram, summarize_spectrum
from effcap.capacity.models import ArchitectureSpec, build_model

# WeightWatcher's reading of α (Martin & Mahoney 2021): inside this range a layer looks well trained.
WELL_TRAINED_ALPHA = (2.0, 6.0)


@dataclass(frozen=True)
class LayerSpectrum:
    name: str
    kind: str
    # Shape of each analysed matrix (rows, columns) and how many there are (kernel positions for a conv).
    matrix_shape: tuple[int, int]
    matrices: int
    spectrum: SpectrumSummary

    @property
    def alpha_weighted(self) -> float | None:
        """α · log10 λ_max, WeightWatcher's α̂: the layer's α scaled by its largest eigenvalue."""
        if self.spectrum.fit is None or self.spectrum.spectral_norm <= 0:
            return None
        return self.spectrum.fit.alpha * float(np.log10(self.spectrum.spectral_norm**2))


@dataclass(frozen=True)
class WeightsResult:
    layers: list[LayerSpectrum]

    @property
    def fitted(self) -> list[LayerSpectrum]:
        return [layer for layer in self.layers if layer.spectrum.fit is not None]

    @property
    def mean_alpha(self) -> float | None:
        alphas = [layer.spectrum.fit.alpha for layer in self.fitted]
        return float(np.mean(alphas)) if alphas else None


def layer_matrices(module: nn.Module) -> list[torch.Tensor]:
    """The matrices a layer's ESD pools: W for a Linear, a conv's (c_out × c_in/groups) slice per kernel position."""
    weight = module.weight.detach().to("cpu", torch.float64)
    if weight.dim() == 2:
        return [weight]
    positions = weight.reshape(weight.shape[0], weight.shape[1], -1)
    return [positions[:, :, k] for k in range(positions.shape[2])]


def run_weights(
    architecture: ArchitectureSpec, state_dict: dict[str, torch.Tensor], progress: AnalysisProgress | None = None
) -> WeightsResult:
    """The spectrum of every Linear/Conv layer of the checkpoint."""
    model = build_model(architecture, device="cpu")
    model.load_state_dict(state_dict)
    modules = [(name, module) for name, module in model.named_modules() if isinstance(module, WEIGHT_LAYERS)]
    layers = []
    for done, (name, module) in enumerate(modules, start=1):
        matrices = layer_matrices(module)
        eigenvalues = eigenvalues_of_gram([m.numpy() for m in matrices])
        shape = (int(matrices[0].shape[0]), int(matrices[0].shape[1]))
        layers.append(LayerSpectrum(name, type(module).__name__, shape, len(matrices), summarize_spectrum(eigenvalues)))
        if progress is not None:
            progress.update("weight spectra", done, len(modules), done / len(modules))
    return WeightsResult(layers)
