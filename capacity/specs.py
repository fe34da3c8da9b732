"""Audit specs as pydantic models: one place for defaults, bounds and validation messages.

The gRPC API carries the same fields as protobuf messages (protos/effcap/v1/spec.proto); the
service converts them to these models, and `effcap audit --local` uses them directly.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ConditionKind(str, Enum):
    TRUE_LABELS = "true_labels"
    CORRUPT_LABELS = "corrupt_labels"
    RANDOM_LABELS = "random_labels"
    SHUFFLED_PIXELS = "shuffled_pixels"
    RANDOM_PIXELS = "random_pixels"
    GAUSSIAN_INPUTS = "gaussian_inputs"


_SHORT_NAMES = {
    ConditionKind.TRUE_LABELS: "true",
    ConditionKind.RANDOM_LABELS: "random",
    ConditionKind.SHUFFLED_PIXELS: "shuffled_pixels",
    ConditionKind.RANDOM_PIXELS: "random_pixels",
    ConditionKind.GAUSSIAN_INPUTS: "gaussian",
}


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ConditionKind
    # Replacement probability, only for corrupt_labels, in (0, 1).
    corruption: float = 0.0

    @model_validator(mode="after")
    def _corruption_matches_kind(self) -> Condition:
        if self.kind is ConditionKind.CORRUPT_LABELS and not 0.0 < self.corruption < 1.0:
            raise ValueError("corruption must be in (0, 1) for corrupt_labels (use random_labels for 1)")
        if self.kind is not ConditionKind.CORRUPT_LABELS and self.corruption != 0.0:
            raise ValueError(f"corruption applies only to corrupt_labels, not {self.kind.value}")
        return self

    @property
    def label(self) -> str:
        """Short name used in tables and on the command line: true, corrupt(0.5), random, ..."""
        if self.kind is ConditionKind.CORRUPT_LABELS:
            return f"corrupt({self.corruption:g})"
        return _SHORT_NAMES[self.kind]


def _default_conditions() -> list[Condition]:
    return [
        Condition(kind=ConditionKind.TRUE_LABELS),
        Condition(kind=ConditionKind.CORRUPT_LABELS, corruption=0.5),
        Condition(kind=ConditionKind.RANDOM_LABELS),
    ]


class TrainingSpec(BaseModel):
    """SGD with momentum and per-epoch exponential decay (Zhang et al., appendix A)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(0.01, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)
    lr_decay_per_epoch: float = Field(0.95, gt=0, le=1)
    batch_size: int = Field(128, ge=1, le=65_536)
    # Up to 10^7: a memorisation subset of 2 examples restates a 300-epoch CIFAR budget as 117,300 of
    # its own epochs; what an audit may cost in all is the server's admission check (service/limits.py).
    max_epochs: int = Field(100, ge=1, le=10_000_000)
    fit_threshold: float = Field(1.0, gt=0, le=1)
    weight_decay: float = Field(0.0, ge=0, le=1)


class RandomizationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    conditions: list[Condition] = Field(default_factory=_default_conditions, min_length=1, max_length=64)
    seeds_per_condition: int = Field(2, ge=1, le=64)
    init: Literal["reinit", "checkpoint"] = "reinit"
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @field_validator("conditions")
    @classmethod
    def _distinct_conditions(cls, conditions: list[Condition]) -> list[Condition]:
        labels = [c.label for c in conditions]
        if len(set(labels)) != len(labels):
            raise ValueError(f"conditions must be distinct, got {labels}")
        return conditions


# Every subset size gets the steps of max_epochs epochs of the whole train split (memorization.py);
# a decaying learning rate would spend most of them near zero (0.95 per epoch leaves 0.6% after 100
# epochs), and m* would then measure the schedule more than the architecture.
MEMORIZATION_TRAINING_DEFAULTS: dict[str, Any] = {"lr_decay_per_epoch": 1.0}


class MemorizationSpec(BaseModel):
    """Random labels on subsets of growing size, to find the largest one the architecture fits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_subset_size: int = Field(64, ge=2, le=10_000_000)
    # None: up to the whole train split.
    max_subset_size: int | None = Field(None, ge=2, le=10_000_000)
    growth_factor: float = Field(2.0, gt=1, le=16)
    bisection_steps: int = Field(4, ge=0, le=30)
    seeds: int = Field(1, ge=1, le=16)
    # The randomization test's defaults but a constant learning rate (MEMORIZATION_TRAINING_DEFAULTS).
    training: TrainingSpec = Field(default_factory=lambda: TrainingSpec(**MEMORIZATION_TRAINING_DEFAULTS))

    @field_validator("training", mode="before")
    @classmethod
    def _memorization_training_defaults(cls, value: Any) -> Any:
        """Fields a client leaves out of a partial training spec take the memorisation defaults too."""
        return {**MEMORIZATION_TRAINING_DEFAULTS, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _sizes_ordered(self) -> MemorizationSpec:
        if self.max_subset_size is not None and self.max_subset_size < self.min_subset_size:
            raise ValueError(f"max_subset_size ({self.max_subset_size}) must be at least min_subset_size ({self.min_subset_size})")
        return self


class RademacherSpec(BaseModel):
    """Rademacher estimates (global by fitting signs, local in norm balls) and norm-based bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    draws: int = Field(8, ge=2, le=256)
    # Also train fresh networks to fit random signs (the global estimate); costs `draws` trainings.
    fit_signs: bool = True
    # Ball radii about the checkpoint, as fractions of its parameter norm.
    relative_radii: list[Annotated[float, Field(gt=0, le=1000)]] = Field(default_factory=lambda: [0.001, 0.01, 0.1, 1.0], min_length=1, max_length=32)
    # Candidate steps of each adaptive projected ascent (local_ascent.py), one gradient evaluation each.
    ascent_steps: int = Field(20, ge=1, le=10_000)
    # Training examples used (the first ones of the train split).
    max_examples: int = Field(1000, ge=2, le=1_000_000)
    delta: float = Field(0.05, gt=0, lt=1)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    sharpness: bool = True
    # 0 skips the NTK complexity.
    ntk_examples: int = Field(256, ge=0, le=4096)
    # Jiang et al. (2020)'s best-ranked cheap measures (docs/measures.md): flatness and sharpness scales, path-norm
    # and distance-from-init variants, SGD steps from initialisation to a training cross-entropy of 0.1.
    generalization_measures: bool = True


# "structured" (units removed physically, in every family but the ViT) and "low_rank_by_rank" are not in the
# default list.
CompressionMethod = Literal["magnitude_global", "magnitude_layerwise", "random", "prune_quantize", "quantization", "low_rank", "low_rank_by_rank", "structured"]


class CompressibilitySpec(BaseModel):
    """One-shot compression of the checkpoint, measured on the test split (the train split if none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    methods: list[CompressionMethod] = Field(
        default_factory=lambda: ["magnitude_global", "magnitude_layerwise", "random", "prune_quantize", "quantization", "low_rank"], min_length=1, max_length=8
    )
    sparsities: list[Annotated[float, Field(ge=0, lt=1)]] = Field(
        default_factory=lambda: [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999], min_length=2, max_length=64
    )
    bisection_steps: int = Field(4, ge=0, le=20)
    # Accuracy loss accepted, as a fraction (0.01 = one point).
    tolerance: float = Field(0.01, ge=0, le=1)
    quantization_bits: list[Annotated[int, Field(ge=2, le=16)]] = Field(default_factory=lambda: [8, 6, 4, 3, 2], min_length=1, max_length=15)
    low_rank_energies: list[Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=lambda: [0.999, 0.99, 0.95, 0.9, 0.8, 0.5], min_length=1, max_length=32)
    # Shares of each layer's full rank kept by low_rank_by_rank.
    low_rank_rank_fractions: list[Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=lambda: [0.5, 0.25, 0.1, 0.05], min_length=1, max_length=32)
    # Per-layer sensitivity curves (one layer pruned at a time).
    sensitivity: bool = True
    max_eval_examples: int = Field(10_000, ge=10, le=10_000_000)
    # n of the bound: how many examples the model was trained on. None: the audit's train split.
    train_set_size: int | None = Field(None, ge=1)
    delta: float = Field(0.05, gt=0, lt=1)
    # Recovery fine-tuning with masks fixed, in SGD steps on the train split; 0 = one-shot only.
    finetune_steps: int = Field(0, ge=0, le=1_000_000)
    finetune: TrainingSpec = Field(default_factory=TrainingSpec)


class MemorizationScoresSpec(BaseModel):
    """Per-example memorisation, C-scores and influence from `models` networks, each trained on a random
    `subset_fraction` of the train split (Feldman & Zhang 2020; docs/memorization_scores.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: int = Field(64, ge=2, le=4096)
    # Strictly inside (0, 1): every example needs models that held it and models that did not.
    subset_fraction: float = Field(0.7, gt=0, lt=1)
    # Most memorised train examples listed in the report (with thumbnails for image data).
    top_examples: int = Field(16, ge=0, le=1000)
    # Largest train -> test influence pairs listed in the report.
    top_influence_pairs: int = Field(16, ge=0, le=1000)
    # A constant learning rate unless set, as for the memorisation capacity: the scores need networks that
    # fit their subsets (mem counts what a network that trained on an example gets right), and a decaying
    # rate stalls before the atypical examples are fitted.
    training: TrainingSpec = Field(default_factory=lambda: TrainingSpec(**MEMORIZATION_TRAINING_DEFAULTS))

    _training_defaults = field_validator("training", mode="before")(
        classmethod(lambda cls, value: {**MEMORIZATION_TRAINING_DEFAULTS, **value} if isinstance(value, dict) else value)
    )


class WeightsSpec(BaseModel):
    """Spectra of the checkpoint's weight matrices (capacity/analyses/weights.py): nothing to tune yet."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ANALYSES = ("randomization", "memorization", "rademacher", "compressibility", "memorization_scores", "weights")
# Analyses that read the checkpoint alone: an audit of only these needs no dataset.
DATA_FREE_ANALYSES = ("weights",)


class AuditSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: dict[str, Any] | None = None
    seed: int = Field(0, ge=0, lt=2**63)
    randomization: RandomizationSpec | None = None
    memorization: MemorizationSpec | None = None
    rademacher: RademacherSpec | None = None
    compressibility: CompressibilitySpec | None = None
    memorization_scores: MemorizationScoresSpec | None = None
    # Defaults for the options left unset (capacity/presets.py): quick, standard or paper.
    preset: Literal["quick", "standard", "paper"] = "standard"
    weights: WeightsSpec | None = None

    @property
    def needs_data(self) -> bool:
        return any(getattr(self, a) is not None for a in ANALYSES if a not in DATA_FREE_ANALYSES)

    @model_validator(mode="after")
    def _at_least_one_analysis(self) -> AuditSpec:
        if all(getattr(self, a) is None for a in ANALYSES):
            raise ValueError(f"name at least one analysis ({', '.join(ANALYSES)})")
        return self
