"""The randomization test's progress: a share that only grows, and trials counted when they stop training."""

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.analyses.randomization import _Tracker
from effcap.capacity.analyses.trial_batch import TrialPlan
from effcap.capacity.engine.trainer import EpochRecord
from effcap.capacity.specs import Condition


class _Updates(AnalysisProgress):
    def __init__(self) -> None:
        self.updates: list[tuple[int, float]] = []

    def update(self, stage: str, done: int, total: int, fraction: float) -> None:
        self.updates.append((done, fraction))


def test_a_trial_that_fits_counts_as_done_and_the_share_never_falls():
    """In the demo the share went 2% -> 1% when the true-label trials fitted and left the batch (only the still
    training trials are in an epoch's records), and the count read 0 until the whole batch ended."""
    plans = [TrialPlan(Condition(kind="true_labels"), seed, seed) for seed in range(2)]
    plans += [TrialPlan(Condition(kind="random_labels"), seed, 10 + seed) for seed in range(2)]
    updates = _Updates()
    tracker = _Tracker(plans, max_epochs=100, progress=updates)
    record = EpochRecord(0, 0, 1.0, 0.5)
    tracker.epoch(10, {i: record for i in range(4)})  # all four at 10% of their budget
    tracker.epoch(11, {2: record, 3: record})  # the true-label trials fitted at epoch 10 and left
    tracker.epoch(50, {2: record, 3: record})
    tracker.finished(0, None)
    fractions = [fraction for _, fraction in updates.updates]
    assert fractions == sorted(fractions), fractions
    assert updates.updates[0] == (0, 0.1)
    assert updates.updates[1][0] == 2 and abs(updates.updates[1][1] - (1 + 1 + 0.11 + 0.11) / 4) < 1e-12
    assert abs(updates.updates[2][1] - (1 + 1 + 0.5 + 0.5) / 4) < 1e-12
