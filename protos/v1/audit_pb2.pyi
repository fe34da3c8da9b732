import datetime

from effcap.protos.v1 import artifact_pb2 as _artifact_pb2
from effcap.protos.v1 import report_pb2 as _report_pb2
from effcap.protos.v1 import spec_pb2 as _spec_pb2
from google.longrunning import operations_pb2 as _operations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_STATE_UNSPECIFIED: _ClassVar[AuditState]
    AUDIT_STATE_QUEUED: _ClassVar[AuditState]
    AUDIT_STATE_RUNNING: _ClassVar[AuditState]
    AUDIT_STATE_SUCCEEDED: _ClassVar[AuditState]
    AUDIT_STATE_FAILED: _ClassVar[AuditState]
    AUDIT_STATE_CANCELLED: _ClassVar[AuditState]
AUDIT_STATE_UNSPECIFIED: AuditState
AUDIT_STATE_QUEUED: AuditState
AUDIT_STATE_RUNNING: AuditState
AUDIT_STATE_SUCCEEDED: AuditState
AUDIT_STATE_FAILED: AuditState
AUDIT_STATE_CANCELLED: AuditState

class CreateAuditRequest(_message.Message):
    __slots__ = ("request_id", "model", "dataset", "spec", "skip_cache", "initial_model")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SKIP_CACHE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MODEL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model: _artifact_pb2.Digest
    dataset: _spec_pb2.DatasetRef
    spec: _spec_pb2.AuditSpec
    skip_cache: bool
    initial_model: _artifact_pb2.Digest
    def __init__(self, request_id: _Optional[str] = ..., model: _Optional[_Union[_artifact_pb2.Digest, _Mapping]] = ..., dataset: _Optional[_Union[_spec_pb2.DatasetRef, _Mapping]] = ..., spec: _Optional[_Union[_spec_pb2.AuditSpec, _Mapping]] = ..., skip_cache: _Optional[bool] = ..., initial_model: _Optional[_Union[_artifact_pb2.Digest, _Mapping]] = ...) -> None: ...

class AuditProgress(_message.Message):
    __slots__ = ("audit", "state", "stage", "trials_done", "trials_total", "fraction", "attempt", "update_time", "queue_position")
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    TRIALS_DONE_FIELD_NUMBER: _ClassVar[int]
    TRIALS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    audit: str
    state: AuditState
    stage: str
    trials_done: int
    trials_total: int
    fraction: float
    attempt: int
    update_time: _timestamp_pb2.Timestamp
    queue_position: int
    def __init__(self, audit: _Optional[str] = ..., state: _Optional[_Union[AuditState, str]] = ..., stage: _Optional[str] = ..., trials_done: _Optional[int] = ..., trials_total: _Optional[int] = ..., fraction: _Optional[float] = ..., attempt: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queue_position: _Optional[int] = ...) -> None: ...

class Audit(_message.Message):
    __slots__ = ("name", "state", "request_id", "model", "dataset", "spec", "create_time", "start_time", "end_time", "progress", "error", "report")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: AuditState
    request_id: str
    model: _artifact_pb2.Digest
    dataset: _spec_pb2.DatasetRef
    spec: _spec_pb2.AuditSpec
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    progress: AuditProgress
    error: _status_pb2.Status
    report: _report_pb2.AuditReport
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[AuditState, str]] = ..., request_id: _Optional[str] = ..., model: _Optional[_Union[_artifact_pb2.Digest, _Mapping]] = ..., dataset: _Optional[_Union[_spec_pb2.DatasetRef, _Mapping]] = ..., spec: _Optional[_Union[_spec_pb2.AuditSpec, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[_Union[AuditProgress, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., report: _Optional[_Union[_report_pb2.AuditReport, _Mapping]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("sequence", "time", "progress", "trial_finished", "message")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FINISHED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    progress: AuditProgress
    trial_finished: _report_pb2.TrialResult
    message: str
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[_Union[AuditProgress, _Mapping]] = ..., trial_finished: _Optional[_Union[_report_pb2.TrialResult, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class GetAuditRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListAuditsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditsResponse(_message.Message):
    __slots__ = ("audits", "next_page_token")
    AUDITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    audits: _containers.RepeatedCompositeFieldContainer[Audit]
    next_page_token: str
    def __init__(self, audits: _Optional[_Iterable[_Union[Audit, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StreamAuditEventsRequest(_message.Message):
    __slots__ = ("name", "after_sequence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    after_sequence: int
    def __init__(self, name: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class EstimateAuditRequest(_message.Message):
    __slots__ = ("model", "dataset", "spec")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    model: _artifact_pb2.Digest
    dataset: _spec_pb2.DatasetRef
    spec: _spec_pb2.AuditSpec
    def __init__(self, model: _Optional[_Union[_artifact_pb2.Digest, _Mapping]] = ..., dataset: _Optional[_Union[_spec_pb2.DatasetRef, _Mapping]] = ..., spec: _Optional[_Union[_spec_pb2.AuditSpec, _Mapping]] = ...) -> None: ...

class AnalysisEstimate(_message.Message):
    __slots__ = ("analysis", "trials", "sgd_steps", "training_examples", "estimated_seconds", "expected_seconds")
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    SGD_STEPS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    analysis: str
    trials: int
    sgd_steps: int
    training_examples: int
    estimated_seconds: float
    expected_seconds: float
    def __init__(self, analysis: _Optional[str] = ..., trials: _Optional[int] = ..., sgd_steps: _Optional[int] = ..., training_examples: _Optional[int] = ..., estimated_seconds: _Optional[float] = ..., expected_seconds: _Optional[float] = ...) -> None: ...

class AuditEstimate(_message.Message):
    __slots__ = ("analyses", "training_examples", "max_training_examples", "estimated_seconds", "calibration", "spec", "audits_ahead", "defaults_chosen", "expected_seconds")
    ANALYSES_FIELD_NUMBER: _ClassVar[int]
    TRAINING_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_TRAINING_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    AUDITS_AHEAD_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_CHOSEN_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    analyses: _containers.RepeatedCompositeFieldContainer[AnalysisEstimate]
    training_examples: int
    max_training_examples: int
    estimated_seconds: float
    calibration: str
    spec: _spec_pb2.AuditSpec
    audits_ahead: int
    defaults_chosen: _containers.RepeatedScalarFieldContainer[str]
    expected_seconds: float
    def __init__(self, analyses: _Optional[_Iterable[_Union[AnalysisEstimate, _Mapping]]] = ..., training_examples: _Optional[int] = ..., max_training_examples: _Optional[int] = ..., estimated_seconds: _Optional[float] = ..., calibration: _Optional[str] = ..., spec: _Optional[_Union[_spec_pb2.AuditSpec, _Mapping]] = ..., audits_ahead: _Optional[int] = ..., defaults_chosen: _Optional[_Iterable[str]] = ..., expected_seconds: _Optional[float] = ...) -> None: ...
