"""A report stays one gRPC message however many trials and epochs an audit has."""

from effcap.capacity.analyses.randomization import summarise
from effcap.capacity.analyses.trial_batch import TrialPlan, TrialResult
from effcap.capacity.engine.trainer import EpochRecord, TrialOutcome
from effcap.capacity.specs import Condition, ConditionKind, RandomizationSpec, TrainingSpec
from effcap.service.codec import MIN_CURVE_POINTS, randomization_to_proto, thin_curve, trial_to_proto


def curve(epochs: int) -> list[EpochRecord]:
    return [EpochRecord(step=10 * e, epoch=e, train_loss=1.0 / e, train_accuracy=min(1.0, e / epochs)) for e in range(1, epochs + 1)]


def test_a_thinned_curve_keeps_its_ends_and_spaces_the_rest_evenly():
    full = curve(1000)
    thin = thin_curve(full, 11)
    assert [p.epoch for p in thin] == [1, 101, 201, 301, 401, 501, 600, 700, 800, 900, 1000]
    assert thin_curve(full[:5], 11) == full[:5]
    assert len(thin_curve(full, 16)) == 16 and thin_curve(full, 16)[-1] == full[-1]


def test_the_largest_valid_randomization_report_fits_a_grpc_message():
    conditions = [Condition(kind=ConditionKind.CORRUPT_LABELS, corruption=(i + 1) / 66) for i in range(64)]
    spec = RandomizationSpec(conditions=conditions, seeds_per_condition=64, training=TrainingSpec(max_epochs=100))
    results = [
        TrialResult(TrialPlan(c, i, i), TrialOutcome(0.5, 0.1, 1.0, False, 0, 0, 0.0, 1000, 9.0, curve(100)), 0.5) for c in conditions for i in range(64)
    ]
    report = randomization_to_proto(summarise(spec, 10, results, "grouped"))
    assert report.curve_points_per_trial == MIN_CURVE_POINTS
    assert all(len(t.curve) == MIN_CURVE_POINTS and t.curve[-1].epoch == 100 for c in report.conditions for t in c.trials)
    assert report.ByteSize() < 4 << 20
    # A trial_finished event keeps up to 1,000 points.
    assert len(trial_to_proto(results[0]).curve) == 100
