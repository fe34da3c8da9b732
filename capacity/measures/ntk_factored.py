"""The NTK Gram's share from fully connected layers, from two small factors instead of Jacobian rows.

For a Linear layer applied once to one vector per example, ∂f(x_i)/∂W = δ_i a_iᵀ (a_i the layer's input,
δ_i = ∂f(x_i)/∂(its output)), so its share of H = J Jᵀ is exactly (Δ Δᵀ) ⊙ (A Aᵀ), and the bias's is
Δ Δᵀ: forward and backward passes instead of one Jacobian row of in·out numbers per example. On the digits
MLP the rows of the 512x512 layer alone are 1 MiB per example, which bounded the Gram's working memory
(issue 18).

The identity needs more than a Linear module, so a layer is factored only when all of these hold, and is
otherwise left to the row-by-row Gram (measures/ntk.py):
- examples are independent in a batch (the first few examples' logits equal their logits alone);
- its weight and bias are Parameters registered on it (not parametrised, not buffers, not frozen) and no other
  module holds them;
- it is called exactly once per pass, on a (batch, in_features) input, and its output is not modified in place;
- its share's diagonal, ‖δ_i‖²(‖a_i‖² + 1) (without the 1 if it has no bias), equals ‖∂f(x_i)/∂(W, b)‖² from
  autograd on the first examples alone: that catches what the module structure cannot show (a hook that changes
  the output, the weight also used through `F.linear` elsewhere).
The factors of all factored layers together stay within FACTOR_BYTES, so with one layer's float64 copies they
hold no more than the row path's block that ntk_memory.py counts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from effcap.capacity.measures.ntk_memory import BLOCK_BYTES, CHUNK

# Examples per forward and backward pass: a pass's activations are what it holds beyond the factors.
EXAMPLES_PER_PASS = CHUNK
FACTOR_BYTES = BLOCK_BYTES // 3
# Examples whose logits and gradient norms are checked against the factored path's assumptions.
PROBE_EXAMPLES = 3
# Relative to the largest value compared, so that small logits or gradients do not fail on an absolute floor.
_TOLERANCE = {"rtol": 1e-4, "atol": 1e-7}

Scalar = Callable[[torch.Tensor], torch.Tensor]
Factors = dict[str, list[torch.Tensor]]


def factored_gram(model: nn.Module, x: torch.Tensor, scalar: Scalar) -> tuple[torch.Tensor, set[str]]:
    """The factored layers' share of H (n × n, float64) and the names of the parameters it covers.

    `scalar` maps the logits (batch, outputs) to f (batch,). The model must be in eval mode.
    """
    n = len(x)
    gram = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    if torch.is_inference_mode_enabled():  # no autograd and no version counters: everything goes to the rows
        return gram, set()
    layers = _candidate_layers(model, n, x.element_size()) if _examples_independent(model, x) else {}
    inputs, deltas = _factors(model, layers, x, scalar) if layers else ({}, {})
    covered: set[str] = set()
    for name in _diagonals_match(model, {name: layers[name] for name in inputs}, inputs, deltas, x, scalar):
        a, d = torch.cat(inputs.pop(name)).double(), torch.cat(deltas.pop(name)).double()
        delta_gram = d @ d.T
        share = a @ a.T
        share.mul_(delta_gram)
        gram += share
        covered.add(_qualified(name, "weight"))
        if layers[name].bias is not None:
            gram += delta_gram
            covered.add(_qualified(name, "bias"))
    return gram, covered


def _qualified(module_name: str, parameter: str) -> str:
    return f"{module_name}.{parameter}" if module_name else parameter


@torch.no_grad()
def _examples_independent(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether the first examples' logits in one batch are those each gives alone (an imported graph could mix the
    batch axis, e.g. by a transpose; then a layer's input row i need not be example i's)."""
    head = x[:PROBE_EXAMPLES]
    together = model(head)
    alone = torch.cat([model(example[None]) for example in head])
    if together.shape != alone.shape:
        return False
    scale = float(alone.abs().max()) if alone.numel() else 0.0  # small logits must not fail on an absolute floor
    return torch.allclose(together, alone, rtol=_TOLERANCE["rtol"], atol=_TOLERANCE["atol"] * max(scale, 1e-30))


def _candidate_layers(model: nn.Module, n: int, element_size: int) -> dict[str, nn.Linear]:
    """Linear modules with their own plain Parameters, in module order while their factors fit FACTOR_BYTES."""
    holders: dict[int, int] = {}
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            holders[id(parameter)] = holders.get(id(parameter), 0) + 1
    layers, factor_bytes = {}, 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or parametrize.is_parametrized(module):
            continue
        own = [module._parameters.get("weight")] + ([module.bias] if module.bias is not None else [])
        if not all(isinstance(p, nn.Parameter) and p.requires_grad and holders.get(id(p)) == 1 for p in own):
            continue
        size = n * (module.in_features + module.out_features) * element_size
        if factor_bytes + size <= FACTOR_BYTES:
            layers[name] = module
            factor_bytes += size
    return layers


def _factors(
    model: nn.Module, layers: dict[str, nn.Linear], x: torch.Tensor, scalar: Scalar
) -> tuple[Factors, Factors]:
    """Each layer's inputs A and output gradients Δ, pass by pass, for the layers that meet the call conditions."""
    inputs: Factors = {name: [] for name in layers}
    deltas: Factors = {name: [] for name in layers}
    for start in range(0, len(x), EXAMPLES_PER_PASS):
        chunk = x[start : start + EXAMPLES_PER_PASS].detach().requires_grad_(True)
        calls = _capture(model, layers, chunk, scalar)
        for name in list(inputs):
            layer_inputs, gradient, intact = calls.get(name, ([], None, False))
            one_vector_each = (len(chunk), layers[name].in_features)
            if len(layer_inputs) != 1 or layer_inputs[0].shape != one_vector_each or not intact:
                del inputs[name], deltas[name]  # not called, called twice, on more than one vector, or edited in place
                continue
            inputs[name].append(layer_inputs[0].detach())
            deltas[name].append(gradient.detach())
    return inputs, deltas


def _capture(
    model: nn.Module, layers: dict[str, nn.Linear], x: torch.Tensor, scalar: Scalar
) -> dict[str, tuple[list[torch.Tensor], torch.Tensor | None, bool]]:
    """For each layer called on `x`: its inputs, ∂Σf/∂output of a single call, and whether no call's output was
    modified in place afterwards (its gradient would then be the edited tensor's)."""
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor, int]]] = {name: [] for name in layers}

    def hook(name: str) -> Callable:
        def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            seen[name].append((args[0], output, output._version))

        return record

    handles = [layer.register_forward_hook(hook(name)) for name, layer in layers.items()]
    try:
        with torch.enable_grad():
            total = scalar(model(x)).sum()
    finally:
        for handle in handles:
            handle.remove()
    single = {name: calls[0] for name, calls in seen.items() if len(calls) == 1}
    outputs = [output for _, output, _ in single.values()]
    gradients = torch.autograd.grad(total, outputs, materialize_grads=True) if outputs else ()
    gradient_of = dict(zip(single, gradients))
    intact = {name: calls[0][1]._version == calls[0][2] for name, calls in seen.items() if name in gradient_of}
    return {
        name: ([call[0] for call in calls], gradient_of.get(name), intact.get(name, False)) for name, calls in seen.items()
    }


def _diagonals_match(
    model: nn.Module, layers: dict[str, nn.Linear], inputs: Factors, deltas: Factors, x: torch.Tensor, scalar: Scalar
) -> list[str]:
    """The layers whose factored diagonal equals autograd's ‖∂f(x_i)/∂(W, b)‖² on each probe example alone."""
    if not layers:
        return []
    matching = []
    probes = min(PROBE_EXAMPLES, len(x))
    own = {name: [layer.weight] + ([layer.bias] if layer.bias is not None else []) for name, layer in layers.items()}
    exact = {name: torch.zeros(probes, dtype=torch.float64, device=x.device) for name in layers}
    for i in range(probes):
        with torch.enable_grad():
            value = scalar(model(x[i : i + 1])).sum()
            grads = torch.autograd.grad(value, [p for ps in own.values() for p in ps], materialize_grads=True)
        position = 0
        for name, parameters in own.items():
            exact[name][i] = sum(float(g.double().pow(2).sum()) for g in grads[position : position + len(parameters)])
            position += len(parameters)
    for name, layer in layers.items():
        a = inputs[name][0][:probes].double().pow(2).sum(dim=1)
        d = deltas[name][0][:probes].double().pow(2).sum(dim=1)
        factored = d * (a + (1.0 if layer.bias is not None else 0.0))
        floor = _TOLERANCE["atol"] * max(float(exact[name].abs().max()), 1e-30)
        if torch.allclose(factored, exact[name], rtol=_TOLERANCE["rtol"], atol=floor):
            matching.append(name)
    return matching
