"""A training-free, data-dependent complexity from the empirical neural tangent kernel at init.

Arora, Du, Hu, Li, Wang (ICML 2019): for the kernel H = J Jᵀ of a network at initialisation (J the
Jacobian of its output with respect to its parameters, one row per example), √(2 yᵀH⁻¹y / n)
controls the generalisation of the trained network. Labels that are learnable from the inputs give
a small value, random labels a large one. Multi-logit networks are scalarised with a fixed unit
vector u (f = u·logits), and one-hot labels are taken column by column: √(2 tr(YᵀH⁻¹Y) / n).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

CHUNK = 64
# Jacobian columns converted to float64 at a time when forming J_k J_kᵀ.
COLUMN_BLOCK = 8192
RIDGE = 1e-6


def ntk_gram(model: nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """H = J Jᵀ (n × n, float64) as Σ over parameter tensors of J_k J_kᵀ.

    Only one tensor's Jacobian columns are held at a time, in the model's precision (that is the precision
    they are computed in), and multiplied in float64 in column blocks: the whole Jacobian, and a float64
    copy of it, never exist at once (they took 1.6 GB on a digits MLP, issue 18)."""
    model = model.eval()
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    outputs = model(x[:1]).shape[1]
    u = torch.randn(outputs, generator=torch.Generator().manual_seed(seed), dtype=x.dtype).to(x.device)
    u /= u.norm()
    gram = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)
    for name, tensor in params.items():

        def scalar(p: torch.Tensor, example: torch.Tensor, name: str = name) -> torch.Tensor:
            return functional_call(model, ({**params, name: p}, buffers), (example[None],))[0] @ u

        jacobian = vmap(jacrev(scalar), in_dims=(None, 0))
        columns = torch.empty(len(x), tensor.numel(), dtype=tensor.dtype, device=x.device)
        for start in range(0, len(x), CHUNK):
            columns[start : start + CHUNK] = jacobian(tensor, x[start : start + CHUNK]).reshape(-1, tensor.numel())
        for block in columns.split(COLUMN_BLOCK, dim=1):
            block = block.double()
            gram += block @ block.T
    return gram


def ntk_complexity(gram: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """√(2 tr(YᵀH⁻¹Y)/n) with one-hot Y, H regularised by a relative ridge for numerical stability."""
    n = len(gram)
    y = torch.nn.functional.one_hot(labels.long(), num_classes).double().to(gram.device)
    ridge = RIDGE * float(torch.trace(gram)) / n
    factor = torch.linalg.cholesky(gram + ridge * torch.eye(n, dtype=gram.dtype, device=gram.device))
    solved = torch.cholesky_solve(y, factor)
    return math.sqrt(2 * float((y * solved).sum()) / n)
