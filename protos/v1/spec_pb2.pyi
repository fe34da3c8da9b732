from effcap.protos.v1 import artifact_pb2 as _artifact_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConditionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONDITION_KIND_UNSPECIFIED: _ClassVar[ConditionKind]
    CONDITION_KIND_TRUE_LABELS: _ClassVar[ConditionKind]
    CONDITION_KIND_CORRUPT_LABELS: _ClassVar[ConditionKind]
    CONDITION_KIND_RANDOM_LABELS: _ClassVar[ConditionKind]
    CONDITION_KIND_SHUFFLED_PIXELS: _ClassVar[ConditionKind]
    CONDITION_KIND_RANDOM_PIXELS: _ClassVar[ConditionKind]
    CONDITION_KIND_GAUSSIAN_INPUTS: _ClassVar[ConditionKind]

class InitMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INIT_MODE_UNSPECIFIED: _ClassVar[InitMode]
    INIT_MODE_REINIT: _ClassVar[InitMode]
    INIT_MODE_CHECKPOINT: _ClassVar[InitMode]
CONDITION_KIND_UNSPECIFIED: ConditionKind
CONDITION_KIND_TRUE_LABELS: ConditionKind
CONDITION_KIND_CORRUPT_LABELS: ConditionKind
CONDITION_KIND_RANDOM_LABELS: ConditionKind
CONDITION_KIND_SHUFFLED_PIXELS: ConditionKind
CONDITION_KIND_RANDOM_PIXELS: ConditionKind
CONDITION_KIND_GAUSSIAN_INPUTS: ConditionKind
INIT_MODE_UNSPECIFIED: InitMode
INIT_MODE_REINIT: InitMode
INIT_MODE_CHECKPOINT: InitMode

class AuditSpec(_message.Message):
    __slots__ = ("architecture", "seed", "randomization", "memorization", "rademacher", "compressibility", "memorization_scores", "weights", "preset")
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RANDOMIZATION_FIELD_NUMBER: _ClassVar[int]
    MEMORIZATION_FIELD_NUMBER: _ClassVar[int]
    RADEMACHER_FIELD_NUMBER: _ClassVar[int]
    COMPRESSIBILITY_FIELD_NUMBER: _ClassVar[int]
    MEMORIZATION_SCORES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    architecture: _struct_pb2.Struct
    seed: int
    randomization: RandomizationSpec
    memorization: MemorizationSpec
    rademacher: RademacherSpec
    compressibility: CompressibilitySpec
    memorization_scores: MemorizationScoresSpec
    weights: WeightsSpec
    preset: str
    def __init__(self, architecture: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., seed: _Optional[int] = ..., randomization: _Optional[_Union[RandomizationSpec, _Mapping]] = ..., memorization: _Optional[_Union[MemorizationSpec, _Mapping]] = ..., rademacher: _Optional[_Union[RademacherSpec, _Mapping]] = ..., compressibility: _Optional[_Union[CompressibilitySpec, _Mapping]] = ..., memorization_scores: _Optional[_Union[MemorizationScoresSpec, _Mapping]] = ..., weights: _Optional[_Union[WeightsSpec, _Mapping]] = ..., preset: _Optional[str] = ...) -> None: ...

class DatasetRef(_message.Message):
    __slots__ = ("artifact", "builtin")
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    artifact: _artifact_pb2.Digest
    builtin: str
    def __init__(self, artifact: _Optional[_Union[_artifact_pb2.Digest, _Mapping]] = ..., builtin: _Optional[str] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("kind", "corruption")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CORRUPTION_FIELD_NUMBER: _ClassVar[int]
    kind: ConditionKind
    corruption: float
    def __init__(self, kind: _Optional[_Union[ConditionKind, str]] = ..., corruption: _Optional[float] = ...) -> None: ...

class TrainingSpec(_message.Message):
    __slots__ = ("learning_rate", "momentum", "lr_decay_per_epoch", "batch_size", "max_epochs", "fit_threshold", "weight_decay")
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    LR_DECAY_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    FIT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    learning_rate: float
    momentum: float
    lr_decay_per_epoch: float
    batch_size: int
    max_epochs: int
    fit_threshold: float
    weight_decay: float
    def __init__(self, learning_rate: _Optional[float] = ..., momentum: _Optional[float] = ..., lr_decay_per_epoch: _Optional[float] = ..., batch_size: _Optional[int] = ..., max_epochs: _Optional[int] = ..., fit_threshold: _Optional[float] = ..., weight_decay: _Optional[float] = ...) -> None: ...

class RandomizationSpec(_message.Message):
    __slots__ = ("conditions", "seeds_per_condition", "init", "training")
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    SEEDS_PER_CONDITION_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    seeds_per_condition: int
    init: InitMode
    training: TrainingSpec
    def __init__(self, conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., seeds_per_condition: _Optional[int] = ..., init: _Optional[_Union[InitMode, str]] = ..., training: _Optional[_Union[TrainingSpec, _Mapping]] = ...) -> None: ...

class MemorizationSpec(_message.Message):
    __slots__ = ("min_subset_size", "max_subset_size", "growth_factor", "bisection_steps", "seeds", "training")
    MIN_SUBSET_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_SUBSET_SIZE_FIELD_NUMBER: _ClassVar[int]
    GROWTH_FACTOR_FIELD_NUMBER: _ClassVar[int]
    BISECTION_STEPS_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    min_subset_size: int
    max_subset_size: int
    growth_factor: float
    bisection_steps: int
    seeds: int
    training: TrainingSpec
    def __init__(self, min_subset_size: _Optional[int] = ..., max_subset_size: _Optional[int] = ..., growth_factor: _Optional[float] = ..., bisection_steps: _Optional[int] = ..., seeds: _Optional[int] = ..., training: _Optional[_Union[TrainingSpec, _Mapping]] = ...) -> None: ...

class RademacherSpec(_message.Message):
    __slots__ = ("draws", "fit_signs", "relative_radii", "ascent_steps", "max_examples", "delta", "training", "sharpness", "ntk_examples", "generalization_measures")
    DRAWS_FIELD_NUMBER: _ClassVar[int]
    FIT_SIGNS_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_RADII_FIELD_NUMBER: _ClassVar[int]
    ASCENT_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    NTK_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    GENERALIZATION_MEASURES_FIELD_NUMBER: _ClassVar[int]
    draws: int
    fit_signs: bool
    relative_radii: _containers.RepeatedScalarFieldContainer[float]
    ascent_steps: int
    max_examples: int
    delta: float
    training: TrainingSpec
    sharpness: bool
    ntk_examples: int
    generalization_measures: bool
    def __init__(self, draws: _Optional[int] = ..., fit_signs: _Optional[bool] = ..., relative_radii: _Optional[_Iterable[float]] = ..., ascent_steps: _Optional[int] = ..., max_examples: _Optional[int] = ..., delta: _Optional[float] = ..., training: _Optional[_Union[TrainingSpec, _Mapping]] = ..., sharpness: _Optional[bool] = ..., ntk_examples: _Optional[int] = ..., generalization_measures: _Optional[bool] = ...) -> None: ...

class CompressibilitySpec(_message.Message):
    __slots__ = ("methods", "sparsities", "bisection_steps", "tolerance", "quantization_bits", "low_rank_energies", "sensitivity", "max_eval_examples", "train_set_size", "delta", "finetune_steps", "finetune", "low_rank_rank_fractions")
    METHODS_FIELD_NUMBER: _ClassVar[int]
    SPARSITIES_FIELD_NUMBER: _ClassVar[int]
    BISECTION_STEPS_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_BITS_FIELD_NUMBER: _ClassVar[int]
    LOW_RANK_ENERGIES_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_FIELD_NUMBER: _ClassVar[int]
    MAX_EVAL_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SET_SIZE_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINETUNE_STEPS_FIELD_NUMBER: _ClassVar[int]
    FINETUNE_FIELD_NUMBER: _ClassVar[int]
    LOW_RANK_RANK_FRACTIONS_FIELD_NUMBER: _ClassVar[int]
    methods: _containers.RepeatedScalarFieldContainer[str]
    sparsities: _containers.RepeatedScalarFieldContainer[float]
    bisection_steps: int
    tolerance: float
    quantization_bits: _containers.RepeatedScalarFieldContainer[int]
    low_rank_energies: _containers.RepeatedScalarFieldContainer[float]
    sensitivity: bool
    max_eval_examples: int
    train_set_size: int
    delta: float
    finetune_steps: int
    finetune: TrainingSpec
    low_rank_rank_fractions: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, methods: _Optional[_Iterable[str]] = ..., sparsities: _Optional[_Iterable[float]] = ..., bisection_steps: _Optional[int] = ..., tolerance: _Optional[float] = ..., quantization_bits: _Optional[_Iterable[int]] = ..., low_rank_energies: _Optional[_Iterable[float]] = ..., sensitivity: _Optional[bool] = ..., max_eval_examples: _Optional[int] = ..., train_set_size: _Optional[int] = ..., delta: _Optional[float] = ..., finetune_steps: _Optional[int] = ..., finetune: _Optional[_Union[TrainingSpec, _Mapping]] = ..., low_rank_rank_fractions: _Optional[_Iterable[float]] = ...) -> None: ...

class MemorizationScoresSpec(_message.Message):
    __slots__ = ("models", "subset_fraction", "top_examples", "top_influence_pairs", "training")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    SUBSET_FRACTION_FIELD_NUMBER: _ClassVar[int]
    TOP_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    TOP_INFLUENCE_PAIRS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    models: int
    subset_fraction: float
    top_examples: int
    top_influence_pairs: int
    training: TrainingSpec
    def __init__(self, models: _Optional[int] = ..., subset_fraction: _Optional[float] = ..., top_examples: _Optional[int] = ..., top_influence_pairs: _Optional[int] = ..., training: _Optional[_Union[TrainingSpec, _Mapping]] = ...) -> None: ...

class WeightsSpec(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
