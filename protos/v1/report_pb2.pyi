from effcap.protos.v1 import artifact_pb2 as _artifact_pb2
from effcap.protos.v1 import spec_pb2 as _spec_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditReport(_message.Message):
    __slots__ = ("audit", "model", "dataset", "environment", "spec", "card", "randomization", "warnings", "memorization", "rademacher", "compressibility", "memorization_scores", "weights", "defaults_chosen")
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    RANDOMIZATION_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    MEMORIZATION_FIELD_NUMBER: _ClassVar[int]
    RADEMACHER_FIELD_NUMBER: _ClassVar[int]
    COMPRESSIBILITY_FIELD_NUMBER: _ClassVar[int]
    MEMORIZATION_SCORES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_CHOSEN_FIELD_NUMBER: _ClassVar[int]
    audit: str
    model: ModelInfo
    dataset: DatasetInfo
    environment: Environment
    spec: _spec_pb2.AuditSpec
    card: CapacityCard
    randomization: RandomizationReport
    warnings: _containers.RepeatedScalarFieldContainer[str]
    memorization: MemorizationReport
    rademacher: RademacherReport
    compressibility: CompressibilityReport
    memorization_scores: MemorizationScoresReport
    weights: WeightsReport
    defaults_chosen: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, audit: _Optional[str] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., dataset: _Optional[_Union[DatasetInfo, _Mapping]] = ..., environment: _Optional[_Union[Environment, _Mapping]] = ..., spec: _Optional[_Union[_spec_pb2.AuditSpec, _Mapping]] = ..., card: _Optional[_Union[CapacityCard, _Mapping]] = ..., randomization: _Optional[_Union[RandomizationReport, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ..., memorization: _Optional[_Union[MemorizationReport, _Mapping]] = ..., rademacher: _Optional[_Union[RademacherReport, _Mapping]] = ..., compressibility: _Optional[_Union[CompressibilityReport, _Mapping]] = ..., memorization_scores: _Optional[_Union[MemorizationScoresReport, _Mapping]] = ..., weights: _Optional[_Union[WeightsReport, _Mapping]] = ..., defaults_chosen: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("digest", "architecture", "family", "parameter_count", "input_shape", "num_classes", "onnx", "checkpoint_test_accuracy")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_COUNT_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    ONNX_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    digest: _artifact_pb2.Digest
    architecture: _struct_pb2.Struct
    family: str
    parameter_count: int
    input_shape: _containers.RepeatedScalarFieldContainer[int]
    num_classes: int
    onnx: OnnxImport
    checkpoint_test_accuracy: float
    def __init__(self, digest: _Optional[_Union[_artifact_pb2.Digest, _Mapping]] = ..., architecture: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., family: _Optional[str] = ..., parameter_count: _Optional[int] = ..., input_shape: _Optional[_Iterable[int]] = ..., num_classes: _Optional[int] = ..., onnx: _Optional[_Union[OnnxImport, _Mapping]] = ..., checkpoint_test_accuracy: _Optional[float] = ...) -> None: ...

class OnnxImport(_message.Message):
    __slots__ = ("opset", "producer", "onnx_nodes", "graph_nodes", "layers", "export_batch_size", "reference_evaluator", "examples_compared", "values_compared", "max_abs_difference", "max_scaled_difference")
    OPSET_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_FIELD_NUMBER: _ClassVar[int]
    ONNX_NODES_FIELD_NUMBER: _ClassVar[int]
    GRAPH_NODES_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    EXPORT_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_EVALUATOR_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_COMPARED_FIELD_NUMBER: _ClassVar[int]
    VALUES_COMPARED_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    MAX_SCALED_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    opset: int
    producer: str
    onnx_nodes: int
    graph_nodes: int
    layers: int
    export_batch_size: int
    reference_evaluator: str
    examples_compared: int
    values_compared: int
    max_abs_difference: float
    max_scaled_difference: float
    def __init__(self, opset: _Optional[int] = ..., producer: _Optional[str] = ..., onnx_nodes: _Optional[int] = ..., graph_nodes: _Optional[int] = ..., layers: _Optional[int] = ..., export_batch_size: _Optional[int] = ..., reference_evaluator: _Optional[str] = ..., examples_compared: _Optional[int] = ..., values_compared: _Optional[int] = ..., max_abs_difference: _Optional[float] = ..., max_scaled_difference: _Optional[float] = ...) -> None: ...

class DatasetInfo(_message.Message):
    __slots__ = ("source", "train_examples", "test_examples", "num_classes", "input_shape")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    TEST_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    source: _spec_pb2.DatasetRef
    train_examples: int
    test_examples: int
    num_classes: int
    input_shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, source: _Optional[_Union[_spec_pb2.DatasetRef, _Mapping]] = ..., train_examples: _Optional[int] = ..., test_examples: _Optional[int] = ..., num_classes: _Optional[int] = ..., input_shape: _Optional[_Iterable[int]] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("effcap_version", "torch_version", "python_version", "device", "cpu_threads", "cpu_threads_source")
    EFFCAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    TORCH_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CPU_THREADS_FIELD_NUMBER: _ClassVar[int]
    CPU_THREADS_SOURCE_FIELD_NUMBER: _ClassVar[int]
    effcap_version: str
    torch_version: str
    python_version: str
    device: str
    cpu_threads: int
    cpu_threads_source: str
    def __init__(self, effcap_version: _Optional[str] = ..., torch_version: _Optional[str] = ..., python_version: _Optional[str] = ..., device: _Optional[str] = ..., cpu_threads: _Optional[int] = ..., cpu_threads_source: _Optional[str] = ...) -> None: ...

class Statistic(_message.Message):
    __slots__ = ("mean", "std", "count")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    mean: float
    std: float
    count: int
    def __init__(self, mean: _Optional[float] = ..., std: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class CurvePoint(_message.Message):
    __slots__ = ("step", "epoch", "train_loss", "train_accuracy")
    STEP_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    step: int
    epoch: int
    train_loss: float
    train_accuracy: float
    def __init__(self, step: _Optional[int] = ..., epoch: _Optional[int] = ..., train_loss: _Optional[float] = ..., train_accuracy: _Optional[float] = ...) -> None: ...

class TrialResult(_message.Message):
    __slots__ = ("condition", "seed_index", "seed", "train_accuracy", "test_accuracy", "train_loss", "fitted", "steps_to_fit", "epochs_to_fit", "seconds_to_fit", "steps_run", "seconds_run", "labels_changed_fraction", "curve")
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    SEED_INDEX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    FITTED_FIELD_NUMBER: _ClassVar[int]
    STEPS_TO_FIT_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_TO_FIT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_TO_FIT_FIELD_NUMBER: _ClassVar[int]
    STEPS_RUN_FIELD_NUMBER: _ClassVar[int]
    SECONDS_RUN_FIELD_NUMBER: _ClassVar[int]
    LABELS_CHANGED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    condition: _spec_pb2.Condition
    seed_index: int
    seed: int
    train_accuracy: float
    test_accuracy: float
    train_loss: float
    fitted: bool
    steps_to_fit: int
    epochs_to_fit: int
    seconds_to_fit: float
    steps_run: int
    seconds_run: float
    labels_changed_fraction: float
    curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    def __init__(self, condition: _Optional[_Union[_spec_pb2.Condition, _Mapping]] = ..., seed_index: _Optional[int] = ..., seed: _Optional[int] = ..., train_accuracy: _Optional[float] = ..., test_accuracy: _Optional[float] = ..., train_loss: _Optional[float] = ..., fitted: _Optional[bool] = ..., steps_to_fit: _Optional[int] = ..., epochs_to_fit: _Optional[int] = ..., seconds_to_fit: _Optional[float] = ..., steps_run: _Optional[int] = ..., seconds_run: _Optional[float] = ..., labels_changed_fraction: _Optional[float] = ..., curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ...) -> None: ...

class ConditionResult(_message.Message):
    __slots__ = ("condition", "label", "trials", "train_accuracy", "test_accuracy", "steps_to_fit", "seconds_to_fit", "fitted_fraction", "slowdown_vs_true", "generalization_gap", "slowdown_lower_bound")
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    STEPS_TO_FIT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_TO_FIT_FIELD_NUMBER: _ClassVar[int]
    FITTED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SLOWDOWN_VS_TRUE_FIELD_NUMBER: _ClassVar[int]
    GENERALIZATION_GAP_FIELD_NUMBER: _ClassVar[int]
    SLOWDOWN_LOWER_BOUND_FIELD_NUMBER: _ClassVar[int]
    condition: _spec_pb2.Condition
    label: str
    trials: _containers.RepeatedCompositeFieldContainer[TrialResult]
    train_accuracy: Statistic
    test_accuracy: Statistic
    steps_to_fit: Statistic
    seconds_to_fit: Statistic
    fitted_fraction: float
    slowdown_vs_true: float
    generalization_gap: float
    slowdown_lower_bound: float
    def __init__(self, condition: _Optional[_Union[_spec_pb2.Condition, _Mapping]] = ..., label: _Optional[str] = ..., trials: _Optional[_Iterable[_Union[TrialResult, _Mapping]]] = ..., train_accuracy: _Optional[_Union[Statistic, _Mapping]] = ..., test_accuracy: _Optional[_Union[Statistic, _Mapping]] = ..., steps_to_fit: _Optional[_Union[Statistic, _Mapping]] = ..., seconds_to_fit: _Optional[_Union[Statistic, _Mapping]] = ..., fitted_fraction: _Optional[float] = ..., slowdown_vs_true: _Optional[float] = ..., generalization_gap: _Optional[float] = ..., slowdown_lower_bound: _Optional[float] = ...) -> None: ...

class RandomizationReport(_message.Message):
    __slots__ = ("fit_threshold", "max_epochs", "steps_per_epoch", "test_labels_clean", "conditions", "engine_strategy", "curve_points_per_trial")
    FIT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TEST_LABELS_CLEAN_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CURVE_POINTS_PER_TRIAL_FIELD_NUMBER: _ClassVar[int]
    fit_threshold: float
    max_epochs: int
    steps_per_epoch: int
    test_labels_clean: bool
    conditions: _containers.RepeatedCompositeFieldContainer[ConditionResult]
    engine_strategy: str
    curve_points_per_trial: int
    def __init__(self, fit_threshold: _Optional[float] = ..., max_epochs: _Optional[int] = ..., steps_per_epoch: _Optional[int] = ..., test_labels_clean: _Optional[bool] = ..., conditions: _Optional[_Iterable[_Union[ConditionResult, _Mapping]]] = ..., engine_strategy: _Optional[str] = ..., curve_points_per_trial: _Optional[int] = ...) -> None: ...

class SubsetFit(_message.Message):
    __slots__ = ("size", "fitted_fraction", "train_accuracy", "steps_to_fit")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FITTED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    STEPS_TO_FIT_FIELD_NUMBER: _ClassVar[int]
    size: int
    fitted_fraction: float
    train_accuracy: Statistic
    steps_to_fit: Statistic
    def __init__(self, size: _Optional[int] = ..., fitted_fraction: _Optional[float] = ..., train_accuracy: _Optional[_Union[Statistic, _Mapping]] = ..., steps_to_fit: _Optional[_Union[Statistic, _Mapping]] = ...) -> None: ...

class MemorizationReport(_message.Message):
    __slots__ = ("points", "largest_fitted_size", "reached_max_size", "capacity_bits", "bits_per_parameter", "parameter_count", "num_classes", "fit_threshold", "max_epochs", "engine_strategy", "budget_steps")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    LARGEST_FITTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    REACHED_MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BITS_FIELD_NUMBER: _ClassVar[int]
    BITS_PER_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_COUNT_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    FIT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    BUDGET_STEPS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[SubsetFit]
    largest_fitted_size: int
    reached_max_size: bool
    capacity_bits: float
    bits_per_parameter: float
    parameter_count: int
    num_classes: int
    fit_threshold: float
    max_epochs: int
    engine_strategy: str
    budget_steps: int
    def __init__(self, points: _Optional[_Iterable[_Union[SubsetFit, _Mapping]]] = ..., largest_fitted_size: _Optional[int] = ..., reached_max_size: _Optional[bool] = ..., capacity_bits: _Optional[float] = ..., bits_per_parameter: _Optional[float] = ..., parameter_count: _Optional[int] = ..., num_classes: _Optional[int] = ..., fit_threshold: _Optional[float] = ..., max_epochs: _Optional[int] = ..., engine_strategy: _Optional[str] = ..., budget_steps: _Optional[int] = ...) -> None: ...

class CapacityCard(_message.Message):
    __slots__ = ("random_labels_train_accuracy", "random_labels_test_accuracy", "random_labels_slowdown", "true_labels_test_accuracy", "chance_accuracy", "memorized_examples", "memorization_bits", "memorization_bits_per_parameter", "rademacher", "tightest_bound", "bounds_computed", "bounds_vacuous", "compressibility", "compression_ratio", "compressibility_split", "compressibility_note")
    RANDOM_LABELS_TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    RANDOM_LABELS_TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    RANDOM_LABELS_SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    TRUE_LABELS_TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CHANCE_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MEMORIZED_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    MEMORIZATION_BITS_FIELD_NUMBER: _ClassVar[int]
    MEMORIZATION_BITS_PER_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    RADEMACHER_FIELD_NUMBER: _ClassVar[int]
    TIGHTEST_BOUND_FIELD_NUMBER: _ClassVar[int]
    BOUNDS_COMPUTED_FIELD_NUMBER: _ClassVar[int]
    BOUNDS_VACUOUS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSIBILITY_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    COMPRESSIBILITY_SPLIT_FIELD_NUMBER: _ClassVar[int]
    COMPRESSIBILITY_NOTE_FIELD_NUMBER: _ClassVar[int]
    random_labels_train_accuracy: float
    random_labels_test_accuracy: float
    random_labels_slowdown: float
    true_labels_test_accuracy: float
    chance_accuracy: float
    memorized_examples: int
    memorization_bits: float
    memorization_bits_per_parameter: float
    rademacher: RademacherEstimate
    tightest_bound: BoundReport
    bounds_computed: int
    bounds_vacuous: int
    compressibility: float
    compression_ratio: float
    compressibility_split: str
    compressibility_note: str
    def __init__(self, random_labels_train_accuracy: _Optional[float] = ..., random_labels_test_accuracy: _Optional[float] = ..., random_labels_slowdown: _Optional[float] = ..., true_labels_test_accuracy: _Optional[float] = ..., chance_accuracy: _Optional[float] = ..., memorized_examples: _Optional[int] = ..., memorization_bits: _Optional[float] = ..., memorization_bits_per_parameter: _Optional[float] = ..., rademacher: _Optional[_Union[RademacherEstimate, _Mapping]] = ..., tightest_bound: _Optional[_Union[BoundReport, _Mapping]] = ..., bounds_computed: _Optional[int] = ..., bounds_vacuous: _Optional[int] = ..., compressibility: _Optional[float] = ..., compression_ratio: _Optional[float] = ..., compressibility_split: _Optional[str] = ..., compressibility_note: _Optional[str] = ...) -> None: ...

class RademacherEstimate(_message.Message):
    __slots__ = ("mean", "ci_low", "ci_high", "draws")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    DRAWS_FIELD_NUMBER: _ClassVar[int]
    mean: float
    ci_low: float
    ci_high: float
    draws: int
    def __init__(self, mean: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., draws: _Optional[int] = ...) -> None: ...

class RadiusPoint(_message.Message):
    __slots__ = ("radius", "relative_radius", "estimate")
    RADIUS_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_RADIUS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    radius: float
    relative_radius: float
    estimate: RademacherEstimate
    def __init__(self, radius: _Optional[float] = ..., relative_radius: _Optional[float] = ..., estimate: _Optional[_Union[RademacherEstimate, _Mapping]] = ...) -> None: ...

class LayerNorm(_message.Message):
    __slots__ = ("name", "kind", "input_shape", "spectral", "spectral_reshaped_kernel", "frobenius", "l21_transpose", "width", "frobenius_kernel")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    SPECTRAL_FIELD_NUMBER: _ClassVar[int]
    SPECTRAL_RESHAPED_KERNEL_FIELD_NUMBER: _ClassVar[int]
    FROBENIUS_FIELD_NUMBER: _ClassVar[int]
    L21_TRANSPOSE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    FROBENIUS_KERNEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    input_shape: _containers.RepeatedScalarFieldContainer[int]
    spectral: float
    spectral_reshaped_kernel: float
    frobenius: float
    l21_transpose: float
    width: int
    frobenius_kernel: float
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., input_shape: _Optional[_Iterable[int]] = ..., spectral: _Optional[float] = ..., spectral_reshaped_kernel: _Optional[float] = ..., frobenius: _Optional[float] = ..., l21_transpose: _Optional[float] = ..., width: _Optional[int] = ..., frobenius_kernel: _Optional[float] = ...) -> None: ...

class BoundReport(_message.Message):
    __slots__ = ("name", "value", "vacuous", "inputs", "reference", "bounds_on", "fully_paid")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VACUOUS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    BOUNDS_ON_FIELD_NUMBER: _ClassVar[int]
    FULLY_PAID_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    vacuous: bool
    inputs: str
    reference: str
    bounds_on: str
    fully_paid: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., vacuous: _Optional[bool] = ..., inputs: _Optional[str] = ..., reference: _Optional[str] = ..., bounds_on: _Optional[str] = ..., fully_paid: _Optional[bool] = ...) -> None: ...

class RademacherReport(_message.Message):
    __slots__ = ("examples", "confidence", "delta", "global_estimate", "local", "layers", "spectral_product", "spectral_sum", "frobenius_product", "frobenius_sum_of_squares", "parameter_norm", "path_norm", "margin", "misclassified_fraction", "margin_valid", "bounds", "note", "sharpness", "ntk", "local_per_layer", "distance_from_init_frobenius", "distance_from_init_spectral", "global_training", "generalization_measures")
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    SPECTRAL_PRODUCT_FIELD_NUMBER: _ClassVar[int]
    SPECTRAL_SUM_FIELD_NUMBER: _ClassVar[int]
    FROBENIUS_PRODUCT_FIELD_NUMBER: _ClassVar[int]
    FROBENIUS_SUM_OF_SQUARES_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_NORM_FIELD_NUMBER: _ClassVar[int]
    PATH_NORM_FIELD_NUMBER: _ClassVar[int]
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    MISCLASSIFIED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MARGIN_VALID_FIELD_NUMBER: _ClassVar[int]
    BOUNDS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    NTK_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PER_LAYER_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FROM_INIT_FROBENIUS_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FROM_INIT_SPECTRAL_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_TRAINING_FIELD_NUMBER: _ClassVar[int]
    GENERALIZATION_MEASURES_FIELD_NUMBER: _ClassVar[int]
    examples: int
    confidence: float
    delta: float
    global_estimate: RademacherEstimate
    local: _containers.RepeatedCompositeFieldContainer[RadiusPoint]
    layers: _containers.RepeatedCompositeFieldContainer[LayerNorm]
    spectral_product: float
    spectral_sum: float
    frobenius_product: float
    frobenius_sum_of_squares: float
    parameter_norm: float
    path_norm: float
    margin: float
    misclassified_fraction: float
    margin_valid: bool
    bounds: _containers.RepeatedCompositeFieldContainer[BoundReport]
    note: str
    sharpness: SharpnessReport
    ntk: NtkReport
    local_per_layer: _containers.RepeatedCompositeFieldContainer[RadiusPoint]
    distance_from_init_frobenius: float
    distance_from_init_spectral: float
    global_training: str
    generalization_measures: _containers.RepeatedCompositeFieldContainer[GeneralizationMeasure]
    def __init__(self, examples: _Optional[int] = ..., confidence: _Optional[float] = ..., delta: _Optional[float] = ..., global_estimate: _Optional[_Union[RademacherEstimate, _Mapping]] = ..., local: _Optional[_Iterable[_Union[RadiusPoint, _Mapping]]] = ..., layers: _Optional[_Iterable[_Union[LayerNorm, _Mapping]]] = ..., spectral_product: _Optional[float] = ..., spectral_sum: _Optional[float] = ..., frobenius_product: _Optional[float] = ..., frobenius_sum_of_squares: _Optional[float] = ..., parameter_norm: _Optional[float] = ..., path_norm: _Optional[float] = ..., margin: _Optional[float] = ..., misclassified_fraction: _Optional[float] = ..., margin_valid: _Optional[bool] = ..., bounds: _Optional[_Iterable[_Union[BoundReport, _Mapping]]] = ..., note: _Optional[str] = ..., sharpness: _Optional[_Union[SharpnessReport, _Mapping]] = ..., ntk: _Optional[_Union[NtkReport, _Mapping]] = ..., local_per_layer: _Optional[_Iterable[_Union[RadiusPoint, _Mapping]]] = ..., distance_from_init_frobenius: _Optional[float] = ..., distance_from_init_spectral: _Optional[float] = ..., global_training: _Optional[str] = ..., generalization_measures: _Optional[_Iterable[_Union[GeneralizationMeasure, _Mapping]]] = ...) -> None: ...

class GeneralizationMeasure(_message.Message):
    __slots__ = ("name", "equation", "value", "definition", "note")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EQUATION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    equation: str
    value: float
    definition: str
    note: str
    def __init__(self, name: _Optional[str] = ..., equation: _Optional[str] = ..., value: _Optional[float] = ..., definition: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class SharpnessReport(_message.Message):
    __slots__ = ("sigma", "flatness", "magnitude_aware_sigma", "magnitude_aware_flatness", "target_accuracy_drop", "forward_passes")
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    FLATNESS_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_AWARE_SIGMA_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_AWARE_FLATNESS_FIELD_NUMBER: _ClassVar[int]
    TARGET_ACCURACY_DROP_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    sigma: float
    flatness: float
    magnitude_aware_sigma: float
    magnitude_aware_flatness: float
    target_accuracy_drop: float
    forward_passes: int
    def __init__(self, sigma: _Optional[float] = ..., flatness: _Optional[float] = ..., magnitude_aware_sigma: _Optional[float] = ..., magnitude_aware_flatness: _Optional[float] = ..., target_accuracy_drop: _Optional[float] = ..., forward_passes: _Optional[int] = ...) -> None: ...

class NtkReport(_message.Message):
    __slots__ = ("examples", "true_labels", "random_labels")
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    TRUE_LABELS_FIELD_NUMBER: _ClassVar[int]
    RANDOM_LABELS_FIELD_NUMBER: _ClassVar[int]
    examples: int
    true_labels: float
    random_labels: float
    def __init__(self, examples: _Optional[int] = ..., true_labels: _Optional[float] = ..., random_labels: _Optional[float] = ...) -> None: ...

class CompressionPoint(_message.Message):
    __slots__ = ("method", "level", "accuracy", "loss", "train_accuracy", "train_loss", "nonzero_parameters", "compression_ratio", "theoretical_speedup", "code_bits", "refined", "measured_speedup")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    NONZERO_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    THEORETICAL_SPEEDUP_FIELD_NUMBER: _ClassVar[int]
    CODE_BITS_FIELD_NUMBER: _ClassVar[int]
    REFINED_FIELD_NUMBER: _ClassVar[int]
    MEASURED_SPEEDUP_FIELD_NUMBER: _ClassVar[int]
    method: str
    level: float
    accuracy: float
    loss: float
    train_accuracy: float
    train_loss: float
    nonzero_parameters: int
    compression_ratio: float
    theoretical_speedup: float
    code_bits: float
    refined: bool
    measured_speedup: float
    def __init__(self, method: _Optional[str] = ..., level: _Optional[float] = ..., accuracy: _Optional[float] = ..., loss: _Optional[float] = ..., train_accuracy: _Optional[float] = ..., train_loss: _Optional[float] = ..., nonzero_parameters: _Optional[int] = ..., compression_ratio: _Optional[float] = ..., theoretical_speedup: _Optional[float] = ..., code_bits: _Optional[float] = ..., refined: _Optional[bool] = ..., measured_speedup: _Optional[float] = ...) -> None: ...

class MethodCompressibility(_message.Message):
    __slots__ = ("method", "sparsity", "compression_ratio", "train_sparsity")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SPARSITY_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    TRAIN_SPARSITY_FIELD_NUMBER: _ClassVar[int]
    method: str
    sparsity: float
    compression_ratio: float
    train_sparsity: float
    def __init__(self, method: _Optional[str] = ..., sparsity: _Optional[float] = ..., compression_ratio: _Optional[float] = ..., train_sparsity: _Optional[float] = ...) -> None: ...

class LayerSensitivity(_message.Message):
    __slots__ = ("layer", "sparsities", "accuracies", "integral")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    SPARSITIES_FIELD_NUMBER: _ClassVar[int]
    ACCURACIES_FIELD_NUMBER: _ClassVar[int]
    INTEGRAL_FIELD_NUMBER: _ClassVar[int]
    layer: str
    sparsities: _containers.RepeatedScalarFieldContainer[float]
    accuracies: _containers.RepeatedScalarFieldContainer[float]
    integral: float
    def __init__(self, layer: _Optional[str] = ..., sparsities: _Optional[_Iterable[float]] = ..., accuracies: _Optional[_Iterable[float]] = ..., integral: _Optional[float] = ...) -> None: ...

class OccamBoundReport(_message.Message):
    __slots__ = ("method", "level", "code_bits", "hyperparameter_bits", "train_error", "n", "kl_bound", "catoni_bound", "hoeffding_bound", "delta", "vacuous")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    CODE_BITS_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETER_BITS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ERROR_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    KL_BOUND_FIELD_NUMBER: _ClassVar[int]
    CATONI_BOUND_FIELD_NUMBER: _ClassVar[int]
    HOEFFDING_BOUND_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    VACUOUS_FIELD_NUMBER: _ClassVar[int]
    method: str
    level: float
    code_bits: float
    hyperparameter_bits: float
    train_error: float
    n: int
    kl_bound: float
    catoni_bound: float
    hoeffding_bound: float
    delta: float
    vacuous: bool
    def __init__(self, method: _Optional[str] = ..., level: _Optional[float] = ..., code_bits: _Optional[float] = ..., hyperparameter_bits: _Optional[float] = ..., train_error: _Optional[float] = ..., n: _Optional[int] = ..., kl_bound: _Optional[float] = ..., catoni_bound: _Optional[float] = ..., hoeffding_bound: _Optional[float] = ..., delta: _Optional[float] = ..., vacuous: _Optional[bool] = ...) -> None: ...

class CompressibilityReport(_message.Message):
    __slots__ = ("eval_split", "baseline_accuracy", "baseline_train_accuracy", "tolerance", "parameter_count", "points", "methods", "sensitivities", "bound", "ranks")
    EVAL_SPLIT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    BASELINE_TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_COUNT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITIES_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    RANKS_FIELD_NUMBER: _ClassVar[int]
    eval_split: str
    baseline_accuracy: float
    baseline_train_accuracy: float
    tolerance: float
    parameter_count: int
    points: _containers.RepeatedCompositeFieldContainer[CompressionPoint]
    methods: _containers.RepeatedCompositeFieldContainer[MethodCompressibility]
    sensitivities: _containers.RepeatedCompositeFieldContainer[LayerSensitivity]
    bound: OccamBoundReport
    ranks: _containers.RepeatedCompositeFieldContainer[LayerRank]
    def __init__(self, eval_split: _Optional[str] = ..., baseline_accuracy: _Optional[float] = ..., baseline_train_accuracy: _Optional[float] = ..., tolerance: _Optional[float] = ..., parameter_count: _Optional[int] = ..., points: _Optional[_Iterable[_Union[CompressionPoint, _Mapping]]] = ..., methods: _Optional[_Iterable[_Union[MethodCompressibility, _Mapping]]] = ..., sensitivities: _Optional[_Iterable[_Union[LayerSensitivity, _Mapping]]] = ..., bound: _Optional[_Union[OccamBoundReport, _Mapping]] = ..., ranks: _Optional[_Iterable[_Union[LayerRank, _Mapping]]] = ...) -> None: ...

class LayerRank(_message.Message):
    __slots__ = ("layer", "full_rank", "stable_rank", "effective_rank")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    FULL_RANK_FIELD_NUMBER: _ClassVar[int]
    STABLE_RANK_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_RANK_FIELD_NUMBER: _ClassVar[int]
    layer: str
    full_rank: int
    stable_rank: float
    effective_rank: float
    def __init__(self, layer: _Optional[str] = ..., full_rank: _Optional[int] = ..., stable_rank: _Optional[float] = ..., effective_rank: _Optional[float] = ...) -> None: ...

class ExampleScore(_message.Message):
    __slots__ = ("index", "label", "memorization", "memorization_standard_error", "consistency", "held_out_prediction", "held_out_agreement", "models_in", "models_out", "thumbnail_png")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    MEMORIZATION_FIELD_NUMBER: _ClassVar[int]
    MEMORIZATION_STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_PREDICTION_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    MODELS_IN_FIELD_NUMBER: _ClassVar[int]
    MODELS_OUT_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_PNG_FIELD_NUMBER: _ClassVar[int]
    index: int
    label: int
    memorization: float
    memorization_standard_error: float
    consistency: float
    held_out_prediction: int
    held_out_agreement: float
    models_in: int
    models_out: int
    thumbnail_png: bytes
    def __init__(self, index: _Optional[int] = ..., label: _Optional[int] = ..., memorization: _Optional[float] = ..., memorization_standard_error: _Optional[float] = ..., consistency: _Optional[float] = ..., held_out_prediction: _Optional[int] = ..., held_out_agreement: _Optional[float] = ..., models_in: _Optional[int] = ..., models_out: _Optional[int] = ..., thumbnail_png: _Optional[bytes] = ...) -> None: ...

class InfluencePair(_message.Message):
    __slots__ = ("train_index", "test_index", "influence", "influence_standard_error", "train_label", "test_label", "train_memorization", "train_thumbnail_png", "test_thumbnail_png")
    TRAIN_INDEX_FIELD_NUMBER: _ClassVar[int]
    TEST_INDEX_FIELD_NUMBER: _ClassVar[int]
    INFLUENCE_FIELD_NUMBER: _ClassVar[int]
    INFLUENCE_STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LABEL_FIELD_NUMBER: _ClassVar[int]
    TEST_LABEL_FIELD_NUMBER: _ClassVar[int]
    TRAIN_MEMORIZATION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_THUMBNAIL_PNG_FIELD_NUMBER: _ClassVar[int]
    TEST_THUMBNAIL_PNG_FIELD_NUMBER: _ClassVar[int]
    train_index: int
    test_index: int
    influence: float
    influence_standard_error: float
    train_label: int
    test_label: int
    train_memorization: float
    train_thumbnail_png: bytes
    test_thumbnail_png: bytes
    def __init__(self, train_index: _Optional[int] = ..., test_index: _Optional[int] = ..., influence: _Optional[float] = ..., influence_standard_error: _Optional[float] = ..., train_label: _Optional[int] = ..., test_label: _Optional[int] = ..., train_memorization: _Optional[float] = ..., train_thumbnail_png: _Optional[bytes] = ..., test_thumbnail_png: _Optional[bytes] = ...) -> None: ...

class ScoresArchive(_message.Message):
    __slots__ = ("npz", "size_bytes", "sha256")
    NPZ_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    npz: bytes
    size_bytes: int
    sha256: str
    def __init__(self, npz: _Optional[bytes] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class MemorizationScoresReport(_message.Message):
    __slots__ = ("models", "subset_fraction", "subset_size", "train_examples", "histogram_edges", "histogram_counts", "share_above_0_25", "share_above_0_5", "mean_memorization", "mean_consistency", "mean_standard_error", "undefined_examples", "top_memorized", "top_influence", "subset_accuracy", "test_accuracy", "fitted_fraction", "fit_threshold", "max_epochs", "engine_strategy", "scores", "definitions")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    SUBSET_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SUBSET_SIZE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_EDGES_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SHARE_ABOVE_0_25_FIELD_NUMBER: _ClassVar[int]
    SHARE_ABOVE_0_5_FIELD_NUMBER: _ClassVar[int]
    MEAN_MEMORIZATION_FIELD_NUMBER: _ClassVar[int]
    MEAN_CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    MEAN_STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    UNDEFINED_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    TOP_MEMORIZED_FIELD_NUMBER: _ClassVar[int]
    TOP_INFLUENCE_FIELD_NUMBER: _ClassVar[int]
    SUBSET_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TEST_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    FITTED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    FIT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    DEFINITIONS_FIELD_NUMBER: _ClassVar[int]
    models: int
    subset_fraction: float
    subset_size: int
    train_examples: int
    histogram_edges: _containers.RepeatedScalarFieldContainer[float]
    histogram_counts: _containers.RepeatedScalarFieldContainer[int]
    share_above_0_25: float
    share_above_0_5: float
    mean_memorization: float
    mean_consistency: float
    mean_standard_error: float
    undefined_examples: int
    top_memorized: _containers.RepeatedCompositeFieldContainer[ExampleScore]
    top_influence: _containers.RepeatedCompositeFieldContainer[InfluencePair]
    subset_accuracy: Statistic
    test_accuracy: Statistic
    fitted_fraction: float
    fit_threshold: float
    max_epochs: int
    engine_strategy: str
    scores: ScoresArchive
    definitions: str
    def __init__(self, models: _Optional[int] = ..., subset_fraction: _Optional[float] = ..., subset_size: _Optional[int] = ..., train_examples: _Optional[int] = ..., histogram_edges: _Optional[_Iterable[float]] = ..., histogram_counts: _Optional[_Iterable[int]] = ..., share_above_0_25: _Optional[float] = ..., share_above_0_5: _Optional[float] = ..., mean_memorization: _Optional[float] = ..., mean_consistency: _Optional[float] = ..., mean_standard_error: _Optional[float] = ..., undefined_examples: _Optional[int] = ..., top_memorized: _Optional[_Iterable[_Union[ExampleScore, _Mapping]]] = ..., top_influence: _Optional[_Iterable[_Union[InfluencePair, _Mapping]]] = ..., subset_accuracy: _Optional[_Union[Statistic, _Mapping]] = ..., test_accuracy: _Optional[_Union[Statistic, _Mapping]] = ..., fitted_fraction: _Optional[float] = ..., fit_threshold: _Optional[float] = ..., max_epochs: _Optional[int] = ..., engine_strategy: _Optional[str] = ..., scores: _Optional[_Union[ScoresArchive, _Mapping]] = ..., definitions: _Optional[str] = ...) -> None: ...

class WeightsReport(_message.Message):
    __slots__ = ("layers", "mean_alpha", "layers_alpha_outside_range", "layers_fitted")
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    MEAN_ALPHA_FIELD_NUMBER: _ClassVar[int]
    LAYERS_ALPHA_OUTSIDE_RANGE_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FITTED_FIELD_NUMBER: _ClassVar[int]
    layers: _containers.RepeatedCompositeFieldContainer[LayerSpectrum]
    mean_alpha: float
    layers_alpha_outside_range: int
    layers_fitted: int
    def __init__(self, layers: _Optional[_Iterable[_Union[LayerSpectrum, _Mapping]]] = ..., mean_alpha: _Optional[float] = ..., layers_alpha_outside_range: _Optional[int] = ..., layers_fitted: _Optional[int] = ...) -> None: ...

class LayerSpectrum(_message.Message):
    __slots__ = ("name", "kind", "rows", "columns", "matrices", "eigenvalues", "spectral_norm", "frobenius_norm", "stable_rank", "alpha", "alpha_weighted", "xmin", "ks_distance", "tail_eigenvalues", "esd_bin_edges", "esd_counts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    MATRICES_FIELD_NUMBER: _ClassVar[int]
    EIGENVALUES_FIELD_NUMBER: _ClassVar[int]
    SPECTRAL_NORM_FIELD_NUMBER: _ClassVar[int]
    FROBENIUS_NORM_FIELD_NUMBER: _ClassVar[int]
    STABLE_RANK_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    ALPHA_WEIGHTED_FIELD_NUMBER: _ClassVar[int]
    XMIN_FIELD_NUMBER: _ClassVar[int]
    KS_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    TAIL_EIGENVALUES_FIELD_NUMBER: _ClassVar[int]
    ESD_BIN_EDGES_FIELD_NUMBER: _ClassVar[int]
    ESD_COUNTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    rows: int
    columns: int
    matrices: int
    eigenvalues: int
    spectral_norm: float
    frobenius_norm: float
    stable_rank: float
    alpha: float
    alpha_weighted: float
    xmin: float
    ks_distance: float
    tail_eigenvalues: int
    esd_bin_edges: _containers.RepeatedScalarFieldContainer[float]
    esd_counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., rows: _Optional[int] = ..., columns: _Optional[int] = ..., matrices: _Optional[int] = ..., eigenvalues: _Optional[int] = ..., spectral_norm: _Optional[float] = ..., frobenius_norm: _Optional[float] = ..., stable_rank: _Optional[float] = ..., alpha: _Optional[float] = ..., alpha_weighted: _Optional[float] = ..., xmin: _Optional[float] = ..., ks_distance: _Optional[float] = ..., tail_eigenvalues: _Optional[int] = ..., esd_bin_edges: _Optional[_Iterable[float]] = ..., esd_counts: _Optional[_Iterable[int]] = ...) -> None: ...
