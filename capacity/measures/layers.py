"""Finding a network's weight layers by running it, and folding BatchNorm into them.

Layers are found by tracing the forward pass (torch.fx), in execution order, with the input shape
each one really sees, so residual networks and any module nesting are handled without assuming
`children()` order. BatchNorm (eval statistics) that directly follows a conv or linear layer is
folded into it, as the measures of Jiang et al. (2020) prescribe: the network computes the same
function, and its weights are the ones that matter for norms.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import fx, nn

from effcap.capacity.graphs.network import GraphNetwork
from effcap.capacity.graphs.rewrite import fold_batchnorm as fold_graph_batchnorm

# Every layer with a weight matrix or kernel: Linear and all convolutions, transposed ones included.
WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
# Layers a following BatchNorm folds into along their weight's first axis (a transposed conv's
# output channels are on its second).
_FOLDS_BATCHNORM = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class WeightLayer:
    name: str
    module: nn.Module
    # Shape of one example's input to this layer, e.g. (C, H, W) for a Conv2d.
    input_shape: tuple[int, ...]


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with every BatchNorm that directly follows a conv/linear folded in.

    For y = γ (Wx + b − μ)/√(σ² + ε) + β: W' = W·γ/√(σ² + ε) per output channel, b' = (b − μ)·γ/√(σ² + ε) + β.
    """
    if isinstance(model, GraphNetwork):  # an imported graph is interpreted, not traceable: it folds its own spec
        return fold_graph_batchnorm(model)
    graph_module = fx.symbolic_trace(copy.deepcopy(model).eval())
    modules = dict(graph_module.named_modules())
    for node in list(graph_module.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.modules.batchnorm._BatchNorm):
            continue
        source = node.args[0]
        layer_call = isinstance(source, fx.Node) and source.op == "call_module"
        if not (layer_call and isinstance(modules[source.target], _FOLDS_BATCHNORM)):
            continue
        if len(source.users) != 1:
            continue  # the un-normalised output is used elsewhere: folding would change the function
        layer, norm = modules[source.target], modules[node.target]
        scale = (norm.weight if norm.affine else torch.ones_like(norm.running_var)) / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias if norm.affine else torch.zeros_like(norm.running_mean)
        bias = layer.bias if layer.bias is not None else torch.zeros_like(norm.running_mean)
        layer.weight.copy_(layer.weight * scale.reshape(-1, *([1] * (layer.weight.dim() - 1))))
        folded_bias = (bias - norm.running_mean) * scale + shift
        if layer.bias is None:
            layer.bias = nn.Parameter(folded_bias)
        else:
            layer.bias.copy_(folded_bias)
        node.replace_all_uses_with(source)
        graph_module.graph.erase_node(node)
    graph_module.graph.lint()
    graph_module.recompile()
    graph_module.delete_all_unused_submodules()
    return graph_module


def weight_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[WeightLayer]:
    """Linear and conv layers in the order the forward pass runs them, with their input shapes."""
    names = {module: name for name, module in model.named_modules()}
    seen: list[WeightLayer] = []

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        seen.append(WeightLayer(names[module], module, tuple(inputs[0].shape[1:])))

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]
    # In eval mode: a training-mode pass would move BatchNorm's running statistics towards this zero input,
    # and refuse the one example where a BatchNorm sees a 1x1 map (ResNet-18's last stage on 32x32 inputs).
    was_training = model.training
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            model.eval()(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return seen
