import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Task(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_UNSPECIFIED: _ClassVar[Task]
    TASK_TRANSCRIBE: _ClassVar[Task]
    TASK_TRANSLATE: _ClassVar[Task]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_FINAL: _ClassVar[Priority]
    PRIORITY_INTERIM: _ClassVar[Priority]
TASK_UNSPECIFIED: Task
TASK_TRANSCRIBE: Task
TASK_TRANSLATE: Task
PRIORITY_UNSPECIFIED: Priority
PRIORITY_FINAL: Priority
PRIORITY_INTERIM: Priority

class TranscribeRequest(_message.Message):
    __slots__ = ("audio_pcm16", "model", "language_code", "task", "priority", "word_timestamps", "initial_prompt", "session_id", "segment_id")
    AUDIO_PCM16_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WORD_TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    audio_pcm16: bytes
    model: str
    language_code: str
    task: Task
    priority: Priority
    word_timestamps: bool
    initial_prompt: str
    session_id: str
    segment_id: int
    def __init__(self, audio_pcm16: _Optional[bytes] = ..., model: _Optional[str] = ..., language_code: _Optional[str] = ..., task: _Optional[_Union[Task, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., word_timestamps: _Optional[bool] = ..., initial_prompt: _Optional[str] = ..., session_id: _Optional[str] = ..., segment_id: _Optional[int] = ...) -> None: ...

class Word(_message.Message):
    __slots__ = ("word", "probability", "start_offset", "end_offset")
    WORD_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    word: str
    probability: float
    start_offset: _duration_pb2.Duration
    end_offset: _duration_pb2.Duration
    def __init__(self, word: _Optional[str] = ..., probability: _Optional[float] = ..., start_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., end_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("text", "avg_logprob", "no_speech_prob", "compression_ratio", "words", "start_offset", "end_offset")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AVG_LOGPROB_FIELD_NUMBER: _ClassVar[int]
    NO_SPEECH_PROB_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: _containers.RepeatedCompositeFieldContainer[Word]
    start_offset: _duration_pb2.Duration
    end_offset: _duration_pb2.Duration
    def __init__(self, text: _Optional[str] = ..., avg_logprob: _Optional[float] = ..., no_speech_prob: _Optional[float] = ..., compression_ratio: _Optional[float] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ..., start_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., end_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class TranscribeResponse(_message.Message):
    __slots__ = ("segments", "language_code", "language_probability", "model", "full_window_reason", "batch_size", "queue_duration", "inference_duration", "audio_duration", "window_duration")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FULL_WINDOW_REASON_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DURATION_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_DURATION_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_DURATION_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    language_code: str
    language_probability: float
    model: str
    full_window_reason: str
    batch_size: int
    queue_duration: _duration_pb2.Duration
    inference_duration: _duration_pb2.Duration
    audio_duration: _duration_pb2.Duration
    window_duration: _duration_pb2.Duration
    def __init__(self, segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., language_code: _Optional[str] = ..., language_probability: _Optional[float] = ..., model: _Optional[str] = ..., full_window_reason: _Optional[str] = ..., batch_size: _Optional[int] = ..., queue_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., inference_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., audio_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., window_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "english_only", "device", "compute_type", "is_default", "language_codes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENGLISH_ONLY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TYPE_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODES_FIELD_NUMBER: _ClassVar[int]
    name: str
    english_only: bool
    device: str
    compute_type: str
    is_default: bool
    language_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., english_only: _Optional[bool] = ..., device: _Optional[str] = ..., compute_type: _Optional[str] = ..., is_default: _Optional[bool] = ..., language_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
