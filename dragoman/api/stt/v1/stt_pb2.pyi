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
    __slots__ = ("word", "start_s", "end_s", "probability")
    WORD_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    word: str
    start_s: float
    end_s: float
    probability: float
    def __init__(self, word: _Optional[str] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., probability: _Optional[float] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("text", "start_s", "end_s", "avg_logprob", "no_speech_prob", "compression_ratio", "words")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_S_FIELD_NUMBER: _ClassVar[int]
    END_S_FIELD_NUMBER: _ClassVar[int]
    AVG_LOGPROB_FIELD_NUMBER: _ClassVar[int]
    NO_SPEECH_PROB_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    text: str
    start_s: float
    end_s: float
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: _containers.RepeatedCompositeFieldContainer[Word]
    def __init__(self, text: _Optional[str] = ..., start_s: _Optional[float] = ..., end_s: _Optional[float] = ..., avg_logprob: _Optional[float] = ..., no_speech_prob: _Optional[float] = ..., compression_ratio: _Optional[float] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ...) -> None: ...

class TranscribeResponse(_message.Message):
    __slots__ = ("segments", "language_code", "language_probability", "model", "queue_seconds", "inference_seconds", "audio_seconds", "window_seconds", "full_window_reason", "batch_size")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FULL_WINDOW_REASON_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    language_code: str
    language_probability: float
    model: str
    queue_seconds: float
    inference_seconds: float
    audio_seconds: float
    window_seconds: float
    full_window_reason: str
    batch_size: int
    def __init__(self, segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., language_code: _Optional[str] = ..., language_probability: _Optional[float] = ..., model: _Optional[str] = ..., queue_seconds: _Optional[float] = ..., inference_seconds: _Optional[float] = ..., audio_seconds: _Optional[float] = ..., window_seconds: _Optional[float] = ..., full_window_reason: _Optional[str] = ..., batch_size: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "english_only", "device", "compute_type", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENGLISH_ONLY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TYPE_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    english_only: bool
    device: str
    compute_type: str
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., english_only: _Optional[bool] = ..., device: _Optional[str] = ..., compute_type: _Optional[str] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
