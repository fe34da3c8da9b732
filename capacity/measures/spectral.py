"""Spectral norms of layers as linear operators.

A convolution's spectral norm is that of the linear map it computes at its real input size, with
its stride and padding — not that of the reshaped kernel (a common slip, ANCHORS.md). We find the top
eigenvalue of AᵀA by Lanczos iteration (ARPACK), where Aᵀ is applied exactly as the vector-Jacobian
product of the layer (for a conv: the transposed convolution with the right output size), so the map is
exact for any stride, padding, dilation or groups. What this guarantees: ARPACK stops when the Ritz
pair's residual ‖AᵀAv − λv‖ ≤ TOLERANCE·λ, so λ is within TOLERANCE·λ of an eigenvalue of AᵀA (σ to
about half that, relatively); Lanczos from a random start finds the largest one unless the start is
orthogonal to its eigenvector (probability 0). Plain power iteration, used before, stalled at 500 steps
5e-4 low when the top two singular values were close (issue 18).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn
from torch.nn import functional as F

# Relative residual at which ARPACK stops (on σ², so σ is good to about TOLERANCE/2 relative).
TOLERANCE = 1e-8


def _conv_map(layer: nn.Module):
    """The convolution (or transposed convolution) without its bias: x -> A x."""
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        transposed = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[len(layer.kernel_size) - 1]
        geometry = (layer.stride, layer.padding, layer.output_padding, layer.groups, layer.dilation)
        return lambda x: transposed(x, layer.weight, None, *geometry)
    if isinstance(layer, nn.modules.conv._ConvNd) and layer.padding_mode == "zeros":
        conv = (F.conv1d, F.conv2d, F.conv3d)[len(layer.kernel_size) - 1]
        return lambda x: conv(x, layer.weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    raise TypeError(f"no linear map for {type(layer).__name__}")


def kernel_rows(layer: nn.Module) -> torch.Tensor:
    """The weight as (output units, fan-in): each row one output channel's incoming weights.

    A conv's weight is (out, in/groups, *k) already; a transposed conv's is (in, out/groups, *k), so its
    groups' axes are swapped first."""
    weight = layer.weight.detach()
    if not isinstance(layer, nn.modules.conv._ConvTransposeNd):
        return weight.reshape(weight.shape[0], -1)
    groups = layer.groups
    per_group = weight.reshape(groups, weight.shape[0] // groups, weight.shape[1], -1)
    return per_group.transpose(1, 2).reshape(groups * weight.shape[1], -1)


def operator_spectral_norm(layer: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> float:
    """Largest singular value of the layer's linear map on one input of `input_shape`, in float64, to TOLERANCE."""
    if isinstance(layer, nn.Linear):
        return float(torch.linalg.matrix_norm(layer.weight.detach().double(), ord=2))
    if not bool(layer.weight.detach().any()):
        return 0.0  # the zero map (ARPACK cannot start on a zero Krylov space)
    double = copy.deepcopy(layer).double()
    apply = _conv_map(double)
    device = double.weight.device
    size = math.prod(input_shape)

    def gram(vector: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(vector, dtype=np.float64)).to(device).reshape(1, *input_shape)
        x.requires_grad_(True)
        with torch.enable_grad():  # the adjoint is a vector-Jacobian product, also under no_grad callers
            y = apply(x)
            (ata_x,) = torch.autograd.grad(y, x, grad_outputs=y.detach())  # Aᵀ(Ax)
        return ata_x.detach().reshape(-1).cpu().numpy()

    if size == 1:
        return math.sqrt(float(gram(np.ones(1))[0]))
    start = np.random.default_rng(seed).standard_normal(size)
    operator = LinearOperator((size, size), matvec=gram, dtype=np.float64)
    (top,) = eigsh(operator, k=1, which="LA", tol=TOLERANCE, v0=start, return_eigenvectors=False)
    return math.sqrt(max(float(top), 0.0))


def reshaped_kernel_spectral_norm(layer: nn.Module) -> float:
    """The common approximation: spectral norm of the kernel reshaped to (c_out, c_in·k·k). Not the operator's."""
    return float(torch.linalg.matrix_norm(kernel_rows(layer).double(), ord=2))
