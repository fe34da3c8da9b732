"""The memorisation-scores section of a report: summary numbers, top examples with pictures, the archive.

Separate from codec.py because it needs the dataset (the pictures of the examples it names), not only
the analysis result.
"""

from __future__ import annotations

import hashlib

import numpy as np

from effcap.capacity.analyses.memorization_scores import HISTOGRAM_EDGES, MemorizationScoresResult, scores_npz
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.data.thumbnails import thumbnail_png
from effcap.capacity.measures.example_scores import histogram
from effcap.protos.v1 import report_pb2

# Archives up to this size travel inside the report; larger ones are only described (size, sha256).
MAX_INLINE_ARCHIVE_BYTES = 1 << 20

DEFINITIONS = (
    "m networks, each trained from a fresh initialisation on its own random subset S of a fraction r of the train "
    "split. mem(i) = P[h(x_i)=y_i | i in S] - P[h(x_i)=y_i | i not in S] (Feldman & Zhang 2020); "
    "C-score(i) = P[h(x_i)=y_i | i not in S] (Jiang et al. 2021, at ratio r); "
    "infl(i, j) = P[h(x_j)=y_j | i in S] - P[h(x_j)=y_j | i not in S] for test example j. Each probability is the share "
    "of correct networks among those whose subset did (did not) hold i; standard errors are binomial with p smoothed to "
    "(k+1)/(N+2), summed in quadrature for a difference."
)


def memorization_scores_to_proto(
    result: MemorizationScoresResult, dataset: Dataset
) -> report_pb2.MemorizationScoresReport:
    s = result.scores
    defined = np.isfinite(s.memorization)
    archive = scores_npz(result)
    message = report_pb2.MemorizationScoresReport(
        models=result.spec.models,
        subset_fraction=result.spec.subset_fraction,
        subset_size=result.subset_size,
        train_examples=len(s.memorization),
        histogram_edges=HISTOGRAM_EDGES.tolist(),
        histogram_counts=histogram(s.memorization, HISTOGRAM_EDGES).tolist(),
        share_above_0_25=result.share_above(0.25),
        share_above_0_5=result.share_above(0.5),
        mean_memorization=_mean(s.memorization),
        mean_consistency=_mean(s.consistency),
        mean_standard_error=_mean(s.memorization_se),
        undefined_examples=int((~defined).sum()),
        top_memorized=[_example(result, dataset, int(i)) for i in result.top_memorized(result.spec.top_examples)],
        top_influence=_pairs(result, dataset),
        subset_accuracy=_statistic(result.subset_accuracy),
        test_accuracy=_statistic(result.test_accuracy),
        fitted_fraction=result.fitted_fraction,
        fit_threshold=result.spec.training.fit_threshold,
        max_epochs=result.spec.training.max_epochs,
        engine_strategy=result.engine_strategy,
        scores=report_pb2.ScoresArchive(
            npz=archive if len(archive) <= MAX_INLINE_ARCHIVE_BYTES else b"",
            size_bytes=len(archive),
            sha256=hashlib.sha256(archive).hexdigest(),
        ),
        definitions=DEFINITIONS,
    )
    return message


def warnings(report: report_pb2.MemorizationScoresReport) -> list[str]:
    notes = []
    if report.fitted_fraction < 1:
        notes.append(
            f"memorization_scores: {100 * (1 - report.fitted_fraction):.0f}% of the {report.models} networks did not reach train accuracy "
            f"{report.fit_threshold:g} on their subsets within {report.max_epochs} epochs; networks that do not fit their data "
            "understate mem(i) (raise the budget or the learning rate)"
        )
    if report.undefined_examples:
        notes.append(
            f"memorization_scores: {report.undefined_examples} examples were never (or always) in a subset; their scores are undefined"
        )
    if not report.scores.npz:
        notes.append(
            f"memorization_scores: the raw scores archive ({report.scores.size_bytes} bytes) is too large to travel in the report"
        )
    return notes


def _example(result: MemorizationScoresResult, dataset: Dataset, i: int) -> report_pb2.ExampleScore:
    s = result.scores
    return report_pb2.ExampleScore(
        index=i,
        label=int(result.train_labels[i]),
        memorization=float(s.memorization[i]),
        memorization_standard_error=float(s.memorization_se[i]),
        consistency=float(s.consistency[i]),
        held_out_prediction=int(s.held_out_prediction[i]),
        held_out_agreement=float(np.nan_to_num(s.held_out_agreement[i])),
        models_in=int(s.models_in[i]),
        models_out=int(s.models_out[i]),
        thumbnail_png=thumbnail_png(dataset.x_train[i], dataset.input_shape),
    )


def _pairs(result: MemorizationScoresResult, dataset: Dataset) -> list[report_pb2.InfluencePair]:
    infl = result.influence
    return [
        report_pb2.InfluencePair(
            train_index=int(i),
            test_index=int(j),
            influence=float(value),
            influence_standard_error=float(se),
            train_label=int(result.train_labels[i]),
            test_label=int(result.test_labels[j]),
            train_memorization=float(np.nan_to_num(result.scores.memorization[i])),
            train_thumbnail_png=thumbnail_png(dataset.x_train[i], dataset.input_shape),
            test_thumbnail_png=thumbnail_png(dataset.x_test[j], dataset.input_shape),
        )
        for i, j, value, se in zip(infl.train_index, infl.test_index, infl.influence, infl.influence_se)
    ]


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else 0.0


def _statistic(s) -> report_pb2.Statistic:
    return report_pb2.Statistic(mean=s.mean, std=s.std, count=s.count)
