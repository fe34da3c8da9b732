"""When an epoch's end pays for a full evaluation of the train split, the pass that decides "fitted".

A trial fits at the first epoch whose full pass (eval mode, the epoch's final weights) reaches the fit
threshold. That pass costs a third of an epoch (a forward over every example), and most epochs of a
long training are nowhere near the threshold. The epoch has already computed, batch by batch, each
example's prediction just before the step that trained on it: its *running accuracy*, free. It is a
screen, not the answer: the weights move during the epoch, examples trained late are fresher than the
running count says, and dropout or BatchNorm's batch statistics make train mode see another network.
Nothing bounds the end-of-epoch accuracy by the running one, so the screen is calibrated on the trial
itself: every full pass measures the gap (full − running) of that epoch, and a later epoch is
evaluated when its running accuracy plus the largest gap measured so far (ignoring epochs 1 and 2,
where fast learning makes the gap large and says nothing about later ones) plus `FIT_SCREEN_SLACK`
reaches the threshold. A network with dropout is never screened (`trains_at_random`). The rule is an
empirical one, checked two ways: bench/fit_screen.py replays full-pass curves of MLPs, convnets with
BatchNorm, a ViT and memorisation subsets (bench/RESULTS.md), and tests/unit/test_fit_check.py trains
screened and unscreened trials side by side and asks for the same steps to fit.

Skipping a pass changes no weight (evaluation runs in eval mode: no BatchNorm update, no dropout
draw), so the trajectory, and with it the first epoch that reaches the threshold, is the same; the
screen only decides which epochs are looked at. Besides the screened ones, a full pass runs at the
first epochs, at every power of two, at every `ceil(max_epochs / CURVE_PASSES)`-th epoch and at the
budget's last epoch, so a report's learning curve (which holds only full passes) keeps its shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import nn

from effcap.capacity.graphs.network import GraphNetwork

# Added to the calibrated gap, for a fitting epoch whose gap exceeds every one measured before it. No fit of
# a network without dropout in the replays needed as much (the most was 0.030; 0.02 missed one), bench/RESULTS.md.
FIT_SCREEN_SLACK = 0.05
# Epochs before which every epoch is evaluated, and whose gaps do not calibrate the screen.
WARM_UP_EPOCHS = 2
# Evenly spaced full passes kept for the learning curve, whatever the budget.
CURVE_PASSES = 32


@dataclass
class FitScreen:
    """One trial's screen: the largest gap (full − running accuracy) its full passes have shown."""

    threshold: float
    max_epochs: int
    enabled: bool = True
    largest_gap: float = field(default=0.0)

    def full_pass_due(self, epoch: int, running_accuracy: float) -> bool:
        """Whether `epoch` must be evaluated in full: the trial may have fitted, or the curve wants a point."""
        if not self.enabled or on_curve_schedule(epoch, self.max_epochs):
            return True
        return running_accuracy + self.largest_gap + FIT_SCREEN_SLACK >= self.threshold

    def observe(self, epoch: int, running_accuracy: float, full_accuracy: float) -> None:
        """Calibrate on a full pass (after the warm-up epochs, whose fast learning is no guide)."""
        if epoch > WARM_UP_EPOCHS:
            self.largest_gap = max(self.largest_gap, full_accuracy - running_accuracy)


def on_curve_schedule(epoch: int, max_epochs: int) -> bool:
    """The epochs evaluated whatever the screen says: warm-up, powers of two, an even grid, the last."""
    stride = math.ceil(max_epochs / CURVE_PASSES)
    return epoch <= WARM_UP_EPOCHS or epoch & (epoch - 1) == 0 or epoch % stride == 0 or epoch == max_epochs


def trains_at_random(model: nn.Module) -> bool:
    """Whether the training forward pass draws random numbers (dropout). Its running accuracy is then that
    of thinned networks, and the gap to the full one grew as a WRN with dropout 0.3 memorised random labels
    (0.1 to 0.28, bench/fit_screen.py): no past gap bounds the next, so every epoch is evaluated."""
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return True
        if isinstance(module, GraphNetwork) and any(node.op == "Dropout" for node in module.graph.nodes):
            return True
    return False
