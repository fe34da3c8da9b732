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

from effcap.capacity.measures.ntk_factored import factored_gram
from effcap.capacity.measures.ntk_memory import BLOCK_BYTES, CHUNK, COLUMN_BLOCK, block_rows

RIDGE = 1e-6


def ntk_gram(
    model: nn.Module, x: torch.Tensor, seed: int = 0, block_bytes: int = BLOCK_BYTES, factorise: bool = True
) -> torch.Tensor:
    """H = J Jᵀ (n × n, float64) as Σ over parameter tensors of J_k J_kᵀ.

    The whole Jacobian, and a float64 copy of it, took 1.6 GB on a digits MLP (issue 18). Here one block
    of one tensor's Jacobian rows is held, within `block_bytes` in the model's precision (the precision they are
    computed in), with one vmapped chunk of rows beside it, multiplied in float64 column blocks. A tensor whose
    n rows do not fit one block is done block by block, each against the later rows streamed a chunk at a time
    (recomputed: time for memory; holding a second block of later rows, as before, took 48 MiB more).
    Fully connected layers' shares come from two small factors instead (ntk_factored.py); the rows are for the
    rest (convolutions, normalisation, embeddings, layers applied per token), or for all with `factorise` off."""
    model = model.eval()
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    outputs = model(x[:1]).shape[1]
    u = torch.randn(outputs, generator=torch.Generator().manual_seed(seed), dtype=x.dtype).to(x.device)
    u /= u.norm()
    n = len(x)
    if factorise:
        gram, covered = factored_gram(model, x, lambda logits: logits @ u)
    else:
        gram, covered = torch.zeros(n, n, dtype=torch.float64, device=x.device), set()
    for name, tensor in params.items():
        if name in covered:
            continue

        def scalar(p: torch.Tensor, example: torch.Tensor, name: str = name) -> torch.Tensor:
            return functional_call(model, ({**params, name: p}, buffers), (example[None],))[0] @ u

        jacobian = vmap(jacrev(scalar), in_dims=(None, 0))
        rows = block_rows(n, tensor.numel(), tensor.element_size(), block_bytes)
        blocks = [slice(start, min(start + rows, n)) for start in range(0, n, rows)]
        chunk = min(CHUNK, rows)
        for block in blocks:
            own = _rows(jacobian, tensor, x[block], chunk)
            gram[block, block] += _times_transpose(own, own)
            for start in range(block.stop, n, chunk):
                later = slice(start, min(start + chunk, n))
                cross = _times_transpose(own, jacobian(tensor, x[later]).reshape(-1, tensor.numel()))
                gram[block, later] += cross
                gram[later, block] += cross.T
    return gram


def _rows(jacobian, tensor: torch.Tensor, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """∂f(x_i)/∂tensor for the examples `x`, one flattened row each, computed `chunk` examples at a time."""
    out = torch.empty(len(x), tensor.numel(), dtype=tensor.dtype, device=x.device)
    for start in range(0, len(x), chunk):
        out[start : start + chunk] = jacobian(tensor, x[start : start + chunk]).reshape(-1, tensor.numel())
    return out


def _times_transpose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a bᵀ in float64, converting COLUMN_BLOCK columns at a time."""
    product = torch.zeros(len(a), len(b), dtype=torch.float64, device=a.device)
    for start in range(0, a.shape[1], COLUMN_BLOCK):
        product += a[:, start : start + COLUMN_BLOCK].double() @ b[:, start : start + COLUMN_BLOCK].double().T
    return product


def ntk_complexity(gram: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """√(2 tr(YᵀH⁻¹Y)/n) with one-hot Y, H regularised by a relative ridge for numerical stability."""
    n = len(gram)
    y = torch.nn.functional.one_hot(labels.long(), num_classes).double().to(gram.device)
    ridge = RIDGE * float(torch.trace(gram)) / n
    factor = torch.linalg.cholesky(gram + ridge * torch.eye(n, dtype=gram.dtype, device=gram.device))
    solved = torch.cholesky_solve(y, factor)
    return math.sqrt(2 * float((y * solved).sum()) / n)
