"""Memorisation scores: the estimators against brute-force counting, subset trials on the engine against
one-at-a-time training, reproducibility from the seed, and the report section's contents."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch

from effcap.capacity.analyses.memorization_scores import membership_matrix, plan_models, run_memorization_scores, scores_npz, subset_size
from effcap.capacity.analyses.trial_batch import TrainSubset, TrialPlan, run_trials
from effcap.capacity.data.datasets import digits
from effcap.capacity.data.planted import auroc, flip_labels, plant_duplicates
from effcap.capacity.data.thumbnails import image_layout, thumbnail_png
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.errors import InputError
from effcap.capacity.measures.example_scores import binomial_se, example_scores, influence_estimates
from effcap.capacity.models import parse_architecture
from effcap.capacity.specs import Condition, ConditionKind, MemorizationScoresSpec, TrainingSpec
from effcap.protos.v1 import spec_pb2
from effcap.service import codec
from effcap.service.memorization_scores_report import memorization_scores_to_proto

ARCH = parse_architecture({"family": "mlp", "input_shape": [1, 8, 8], "hidden_sizes": [16], "num_classes": 10})
TRUE = Condition(kind=ConditionKind.TRUE_LABELS)


def brute_force(membership, predictions, labels, test_correct):
    """The definitions, one example at a time."""
    m, n = membership.shape
    mem, cscore, held_out, infl = [], [], [], {}
    for i in range(n):
        ins, outs = [k for k in range(m) if membership[k, i]], [k for k in range(m) if not membership[k, i]]
        p_in = np.mean([predictions[k, i] == labels[i] for k in ins]) if ins else np.nan
        p_out = np.mean([predictions[k, i] == labels[i] for k in outs]) if outs else np.nan
        mem.append(p_in - p_out)
        cscore.append(p_out)
        held_out.append(np.bincount([predictions[k, i] for k in outs], minlength=10).argmax() if outs else -1)
        for j in range(test_correct.shape[1]):
            a = np.mean([test_correct[k, j] for k in ins]) if ins else np.nan
            b = np.mean([test_correct[k, j] for k in outs]) if outs else np.nan
            infl[i, j] = a - b
    return np.array(mem), np.array(cscore), np.array(held_out), infl


def test_estimators_match_brute_force_counting():
    rng = np.random.default_rng(3)
    m, n, t = 9, 30, 7
    membership = rng.random((m, n)) < 0.6
    membership[:, 0] = True  # never held out: scores undefined
    labels = rng.integers(0, 10, n)
    predictions = np.where(rng.random((m, n)) < 0.7, labels, rng.integers(0, 10, (m, n)))
    test_correct = rng.random((m, t)) < 0.5
    mem, cscore, held_out, infl = brute_force(membership, predictions, labels, test_correct)
    scores = example_scores(membership, predictions, labels, 10)
    np.testing.assert_allclose(scores.memorization, mem, equal_nan=True)
    np.testing.assert_allclose(scores.consistency, cscore, equal_nan=True)
    np.testing.assert_array_equal(scores.held_out_prediction, held_out)
    assert np.isnan(scores.memorization[0]) and scores.models_out[0] == 0
    estimates = influence_estimates(membership, test_correct, top=5, chunk_rows=4)  # chunks smaller than n
    ranked = sorted(((v, -i, -j) for (i, j), v in infl.items() if np.isfinite(v)), reverse=True)[:5]
    assert [(i, j) for i, j in zip(estimates.train_index, estimates.test_index)] == [(-a, -b) for _, a, b in ranked]
    np.testing.assert_allclose(estimates.influence, [v for v, _, _ in ranked])
    for j in range(t):
        column = [infl[i, j] if np.isfinite(infl[i, j]) else -np.inf for i in range(n)]
        assert estimates.top_train_for_test[j] == int(np.argmax(column))


def test_standard_errors_are_binomial_and_shrink_as_one_over_root_n():
    assert binomial_se(np.array([3]), np.array([8]))[0] == pytest.approx(np.sqrt(0.4 * 0.6 / 8))
    assert np.isnan(binomial_se(np.array([0]), np.array([0]))[0])
    ratio = binomial_se(np.array([40]), np.array([50]))[0] / binomial_se(np.array([80]), np.array([100]))[0]
    assert ratio == pytest.approx(np.sqrt(2), rel=0.02)


def test_subset_trials_stacked_match_one_at_a_time_and_predictions_are_the_networks():
    data = digits()
    plans = [TrialPlan(TRUE, k, 100 + k, TrainSubset(size=300, seed=k)) for k in range(3)]
    training = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=2, fit_threshold=1.0)
    device = torch.device("cpu")
    stacked, _ = run_trials(ARCH, data, plans, training, device, engine=EngineOptions(strategy="vmap"), record_predictions=True)
    single, _ = run_trials(ARCH, data, plans, training, device, engine=EngineOptions(strategy="sequential"), record_predictions=True)
    for a, b in zip(stacked, single):
        assert a.outcome.steps_run == b.outcome.steps_run == 2 * 3  # 300 examples, batch 128: 3 steps per epoch
        assert a.outcome.train_accuracy == pytest.approx(b.outcome.train_accuracy, abs=1e-6)
        assert len(a.outcome.train_predictions) == len(data.x_train) and len(a.outcome.test_predictions) == len(data.x_test)
        agree = np.mean(np.array(a.outcome.train_predictions) == np.array(b.outcome.train_predictions))
        assert agree > 0.99
    # Different subsets train different networks; the accuracy is over the subset the trial trained on.
    rows = membership_matrix(plans, len(data.x_train))[0]
    own = np.mean(np.array(single[0].outcome.train_predictions)[rows] == data.y_train[rows])
    assert own == pytest.approx(single[0].outcome.train_accuracy, abs=1e-9)
    assert stacked[0].outcome.train_predictions != stacked[1].outcome.train_predictions


def test_plans_are_reproducible_subsets_of_the_fraction():
    spec = MemorizationScoresSpec(models=6, subset_fraction=0.7)
    a, b, other = plan_models(spec, 5, 1000), plan_models(spec, 5, 1000), plan_models(spec, 6, 1000)
    assert a == b and a != other
    membership = membership_matrix(a, 1000)
    assert (membership.sum(axis=1) == 700).all() and len({row.tobytes() for row in membership}) == 6
    assert subset_size(10, 0.99) == 9 and subset_size(10, 0.01) == 1


def test_spec_is_validated_with_the_field_named():
    message = spec_pb2.AuditSpec(memorization_scores=spec_pb2.MemorizationScoresSpec(subset_fraction=1.0))
    with pytest.raises(InputError) as info:
        codec.audit_spec_from_proto(message)
    assert info.value.field == "spec.memorization_scores.subset_fraction"
    message = spec_pb2.AuditSpec(memorization_scores=spec_pb2.MemorizationScoresSpec(models=1))
    with pytest.raises(InputError) as info:
        codec.audit_spec_from_proto(message)
    assert info.value.field == "spec.memorization_scores.models"
    spec = codec.audit_spec_from_proto(spec_pb2.AuditSpec(memorization_scores=spec_pb2.MemorizationScoresSpec(training=spec_pb2.TrainingSpec(learning_rate=0.2))))
    assert spec.memorization_scores.models == 64 and spec.memorization_scores.training.lr_decay_per_epoch == 1.0
    assert codec.audit_spec_from_proto(codec.audit_spec_to_proto(spec)) == spec


def test_a_small_audit_reports_scores_pictures_and_the_archive():
    data = digits()
    spec = MemorizationScoresSpec(models=4, top_examples=3, top_influence_pairs=2, training=TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=3))
    result = run_memorization_scores(ARCH, data, spec, 0, torch.device("cpu"))
    again = run_memorization_scores(ARCH, data, spec, 0, torch.device("cpu"))
    np.testing.assert_array_equal(result.scores.memorization, again.scores.memorization)  # same seed, same scores
    section = memorization_scores_to_proto(result, data)
    assert len(section.top_memorized) == 3 and len(section.top_influence) == 2
    assert sum(section.histogram_counts) + section.undefined_examples == len(data.x_train)
    top = section.top_memorized[0]
    assert top.memorization == np.nanmax(result.scores.memorization)
    assert top.thumbnail_png.startswith(b"\x89PNG") and _png_size(top.thumbnail_png) == (8, 8)
    archive = np.load(io.BytesIO(section.scores.npz), allow_pickle=False)
    np.testing.assert_array_equal(archive["memorization"], result.scores.memorization)
    assert archive["label"].shape == (len(data.x_train),) and scores_npz(result) == section.scores.npz


def test_thumbnails_only_for_image_shaped_inputs():
    assert image_layout((64,)) == (1, 8, 8) and image_layout((3, 32, 32)) == (3, 32, 32) and image_layout((10,)) is None
    assert thumbnail_png(np.zeros(10), (10,)) == b""
    png = thumbnail_png(np.arange(3 * 4 * 5, dtype=np.float32), (3, 4, 5))
    assert _png_size(png) == (5, 4)
    raw = zlib.decompress(png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8])
    assert raw[0] == 0 and raw[1] == 0 and raw[-1] == 255  # filter byte, then the smallest (0) ... the largest (255)


def _png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


# ---- ground truth: planted label noise and planted duplicates -----------------------------------------

GROUND_TRUTH_ARCH = parse_architecture({"family": "mlp", "input_shape": [1, 8, 8], "hidden_sizes": [128], "num_classes": 10})
FITTING = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=400)


def test_auroc_matches_brute_force_pair_counting():
    rng = np.random.default_rng(0)
    scores, positives = rng.integers(0, 5, 40).astype(float), rng.random(40) < 0.3
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in scores[positives] for b in scores[~positives]]
    assert auroc(scores, positives) == pytest.approx(np.mean(pairs))


def planted_audit(models: int, audit_seed: int, data=None):
    noise = flip_labels(digits(), 0.05, seed=11)
    duplicates = plant_duplicates(noise.dataset, 5, seed=12)
    spec = MemorizationScoresSpec(models=models, training=FITTING)
    result = run_memorization_scores(GROUND_TRUTH_ARCH, duplicates.dataset, spec, audit_seed, torch.device("cpu"))
    return noise, duplicates, result


def check_ground_truth(noise, duplicates, result, min_auroc: float, min_duplicates_found: int = 5) -> None:
    n = len(noise.dataset.y_train)
    flipped = np.zeros(len(result.scores.memorization), dtype=bool)
    flipped[noise.flipped] = True
    planted_copies = duplicates.train_rows
    flipped[planted_copies] = False  # the copies carry wrong labels too, but are not the planted noise
    scores = result.scores.memorization.copy()
    scores[planted_copies] = np.nan
    assert auroc(scores[:n], flipped[:n]) >= min_auroc
    recovered = result.scores.held_out_prediction[noise.flipped] == noise.original_labels
    assert recovered.mean() > 0.5
    found = result.influence.top_train_for_test[duplicates.test_rows] == duplicates.train_rows
    assert found.sum() >= min_duplicates_found, found


def test_planted_noise_and_duplicates_are_found_with_few_models():
    """16 networks: the fast version of the bench's 64 (bench/memorization_scores.py); with 3-6 networks holding
    each copy out, one of the five copies may lose its test example to a noise tie."""
    check_ground_truth(*planted_audit(16, audit_seed=0), min_auroc=0.93, min_duplicates_found=4)


@pytest.mark.slow
def test_planted_noise_and_duplicates_are_found_at_the_papers_settings():
    """m = 64, r = 0.7: AUROC >= 0.95; two audit seeds agree; standard errors shrink as 1/sqrt(m)."""
    from scipy.stats import spearmanr

    noise, duplicates, first = planted_audit(64, audit_seed=0)
    check_ground_truth(noise, duplicates, first, min_auroc=0.95)
    _, _, second = planted_audit(64, audit_seed=1)
    defined = np.isfinite(first.scores.memorization) & np.isfinite(second.scores.memorization)
    assert spearmanr(first.scores.memorization[defined], second.scores.memorization[defined]).statistic > 0.3
    _, _, doubled = planted_audit(128, audit_seed=2)
    # 1/sqrt(m) holds where the shares are inside (0, 1); for an example every network gets right the smoothed
    # s.e. falls as 1/m (bench/RESULTS.md: the mean over all examples fell 1.77x), so compare the interior ones.
    interior = [(r.scores.accuracy_in > 0) & (r.scores.accuracy_in < 1) | (r.scores.consistency > 0) & (r.scores.consistency < 1) for r in (first, doubled)]
    both = interior[0] & interior[1]
    ratio = np.nanmean(first.scores.memorization_se[both]) / np.nanmean(doubled.scores.memorization_se[both])
    assert ratio == pytest.approx(np.sqrt(2), rel=0.15)
