"""The NTK Gram's share from fully connected layers, from two small factors instead of Jacobian rows.

For a Linear layer applied once to one vector per example, ∂f(x_i)/∂W = δ_i a_iᵀ (a_i the layer's input,
δ_i = ∂f(x_i)/∂(its output)), so its share of H = J Jᵀ is exactly (Δ Δᵀ) ⊙ (A Aᵀ), and the bias's is
Δ Δᵀ: one forward and backward pass instead of one Jacobian row of in·out numbers per example. On the digits
MLP the rows of the 512x512 layer alone are 1 MiB per example, which bounded the Gram's working memory
(issue 18). A layer applied more than once, to more than one vector per example (tokens, positions), or
whose parameters another module shares does not factorise this way and is left to the row-by-row Gram, as is
every layer of a network whose examples are not independent in one batch (checked on the first few).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# Examples per forward and backward pass: the factors are a layer's inputs and output gradients, not its
# Jacobian rows, so chunks only bound the activations.
EXAMPLES_PER_PASS = 256


def factored_gram(
    model: nn.Module, x: torch.Tensor, scalar: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, set[str]]:
    """The Linear layers' share of H (n × n, float64) and the names of the parameters it covers.

    `scalar` maps the logits (batch, outputs) to f (batch,). The model must be in eval mode: examples are then
    independent, so the gradient of Σ_i f(x_i) with respect to a layer's output holds every δ_i at once.
    """
    n = len(x)
    layers = _factorisable_linears(model) if _examples_independent(model, x) else {}
    inputs: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    deltas: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    for start in range(0, len(x), EXAMPLES_PER_PASS):
        chunk = x[start : start + EXAMPLES_PER_PASS].detach().requires_grad_(True)
        for name, (layer_inputs, gradients) in _capture(model, layers, chunk, scalar).items():
            one_vector_each = (len(chunk), layers[name].in_features)
            if name in inputs and (len(layer_inputs) != 1 or layer_inputs[0].shape != one_vector_each):
                del inputs[name], deltas[name]  # called twice, or on more than one vector per example
            if name in inputs:
                inputs[name].append(layer_inputs[0].detach())
                deltas[name].append(gradients[0].detach())
    gram = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    covered: set[str] = set()
    for name, parts in inputs.items():
        if len(parts) != -(-n // EXAMPLES_PER_PASS):
            continue  # not called on some chunk
        a = torch.cat(parts).double()
        d = torch.cat(deltas[name]).double()
        delta_gram = d @ d.T
        gram += delta_gram * (a @ a.T)
        covered.add(f"{name}.weight" if name else "weight")
        if layers[name].bias is not None:
            gram += delta_gram
            covered.add(f"{name}.bias" if name else "bias")
    return gram, covered


@torch.no_grad()
def _examples_independent(model: nn.Module, x: torch.Tensor, probe: int = 3) -> bool:
    """Whether the first examples' logits in one batch are those each gives alone (an imported graph could mix the
    batch axis, e.g. by a transpose; then a layer's input row i need not be example i's, and nothing factorises)."""
    head = x[:probe]
    together = model(head)
    alone = torch.cat([model(example[None]) for example in head])
    return together.shape == alone.shape and torch.allclose(together, alone, rtol=1e-4, atol=1e-6)


def _factorisable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """Linear modules none of whose parameters another module also holds."""
    holders: dict[int, int] = {}
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            holders[id(parameter)] = holders.get(id(parameter), 0) + 1
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and all(holders[id(p)] == 1 for p in module.parameters(recurse=False))
    }


def _capture(
    model: nn.Module, layers: dict[str, nn.Linear], x: torch.Tensor, scalar: Callable[[torch.Tensor], torch.Tensor]
) -> dict[str, tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]]:
    """Every call of each layer on `x`: its inputs and ∂Σf/∂output, for the layers called at all."""
    seen: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {name: ([], []) for name in layers}

    def hook(name: str) -> Callable:
        def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            seen[name][0].append(args[0])
            seen[name][1].append(output)

        return record

    handles = [layer.register_forward_hook(hook(name)) for name, layer in layers.items()]
    try:
        with torch.enable_grad():
            total = scalar(model(x)).sum()
            called = {name: value for name, value in seen.items() if value[1]}
            outputs = [output for _, layer_outputs in called.values() for output in layer_outputs]
            gradients = torch.autograd.grad(total, outputs, materialize_grads=True) if outputs else ()
    finally:
        for handle in handles:
            handle.remove()
    result, position = {}, 0
    for name, (layer_inputs, layer_outputs) in called.items():
        result[name] = (layer_inputs, tuple(gradients[position : position + len(layer_outputs)]))
        position += len(layer_outputs)
    return result
