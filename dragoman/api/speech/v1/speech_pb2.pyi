import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_LINEAR16: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_COMPRESSED: _ClassVar[AudioEncoding]

class SuppressionReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUPPRESSION_REASON_UNSPECIFIED: _ClassVar[SuppressionReason]
    SUPPRESSION_REASON_NO_SPEECH: _ClassVar[SuppressionReason]
    SUPPRESSION_REASON_LOW_LOG_PROBABILITY: _ClassVar[SuppressionReason]
    SUPPRESSION_REASON_REPETITION: _ClassVar[SuppressionReason]
    SUPPRESSION_REASON_KNOWN_PHRASE: _ClassVar[SuppressionReason]

class EndpointReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENDPOINT_REASON_UNSPECIFIED: _ClassVar[EndpointReason]
    ENDPOINT_REASON_SILENCE: _ClassVar[EndpointReason]
    ENDPOINT_REASON_MAX_DURATION: _ClassVar[EndpointReason]
    ENDPOINT_REASON_FINALIZE: _ClassVar[EndpointReason]
    ENDPOINT_REASON_END_OF_STREAM: _ClassVar[EndpointReason]
    ENDPOINT_REASON_SHUTDOWN: _ClassVar[EndpointReason]
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_LINEAR16: AudioEncoding
AUDIO_ENCODING_COMPRESSED: AudioEncoding
SUPPRESSION_REASON_UNSPECIFIED: SuppressionReason
SUPPRESSION_REASON_NO_SPEECH: SuppressionReason
SUPPRESSION_REASON_LOW_LOG_PROBABILITY: SuppressionReason
SUPPRESSION_REASON_REPETITION: SuppressionReason
SUPPRESSION_REASON_KNOWN_PHRASE: SuppressionReason
ENDPOINT_REASON_UNSPECIFIED: EndpointReason
ENDPOINT_REASON_SILENCE: EndpointReason
ENDPOINT_REASON_MAX_DURATION: EndpointReason
ENDPOINT_REASON_FINALIZE: EndpointReason
ENDPOINT_REASON_END_OF_STREAM: EndpointReason
ENDPOINT_REASON_SHUTDOWN: EndpointReason

class RecognitionConfig(_message.Message):
    __slots__ = ("encoding", "sample_rate_hertz", "audio_channel_count", "language_code", "model", "enable_word_time_offsets", "translation_language_codes")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HERTZ_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CHANNEL_COUNT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENABLE_WORD_TIME_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_LANGUAGE_CODES_FIELD_NUMBER: _ClassVar[int]
    encoding: AudioEncoding
    sample_rate_hertz: int
    audio_channel_count: int
    language_code: str
    model: str
    enable_word_time_offsets: bool
    translation_language_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hertz: _Optional[int] = ..., audio_channel_count: _Optional[int] = ..., language_code: _Optional[str] = ..., model: _Optional[str] = ..., enable_word_time_offsets: _Optional[bool] = ..., translation_language_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class VoiceActivityConfig(_message.Message):
    __slots__ = ("aggressiveness", "set_aggressiveness", "speech_threshold", "endpoint_silence", "pre_speech", "max_utterance_duration", "min_speech")
    AGGRESSIVENESS_FIELD_NUMBER: _ClassVar[int]
    SET_AGGRESSIVENESS_FIELD_NUMBER: _ClassVar[int]
    SPEECH_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_SILENCE_FIELD_NUMBER: _ClassVar[int]
    PRE_SPEECH_FIELD_NUMBER: _ClassVar[int]
    MAX_UTTERANCE_DURATION_FIELD_NUMBER: _ClassVar[int]
    MIN_SPEECH_FIELD_NUMBER: _ClassVar[int]
    aggressiveness: int
    set_aggressiveness: bool
    speech_threshold: float
    endpoint_silence: _duration_pb2.Duration
    pre_speech: _duration_pb2.Duration
    max_utterance_duration: _duration_pb2.Duration
    min_speech: _duration_pb2.Duration
    def __init__(self, aggressiveness: _Optional[int] = ..., set_aggressiveness: _Optional[bool] = ..., speech_threshold: _Optional[float] = ..., endpoint_silence: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., pre_speech: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_utterance_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., min_speech: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StreamingRecognitionConfig(_message.Message):
    __slots__ = ("config", "interim_results", "single_utterance", "voice_activity", "enable_speech_events", "translate_interim_results", "caption_room", "speaker_label")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    INTERIM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    SINGLE_UTTERANCE_FIELD_NUMBER: _ClassVar[int]
    VOICE_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    ENABLE_SPEECH_EVENTS_FIELD_NUMBER: _ClassVar[int]
    TRANSLATE_INTERIM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    CAPTION_ROOM_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_LABEL_FIELD_NUMBER: _ClassVar[int]
    config: RecognitionConfig
    interim_results: bool
    single_utterance: bool
    voice_activity: VoiceActivityConfig
    enable_speech_events: bool
    translate_interim_results: bool
    caption_room: str
    speaker_label: str
    def __init__(self, config: _Optional[_Union[RecognitionConfig, _Mapping]] = ..., interim_results: _Optional[bool] = ..., single_utterance: _Optional[bool] = ..., voice_activity: _Optional[_Union[VoiceActivityConfig, _Mapping]] = ..., enable_speech_events: _Optional[bool] = ..., translate_interim_results: _Optional[bool] = ..., caption_room: _Optional[str] = ..., speaker_label: _Optional[str] = ...) -> None: ...

class StreamingControl(_message.Message):
    __slots__ = ("finalize", "update_languages")
    class Finalize(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class UpdateLanguages(_message.Message):
        __slots__ = ("language_code", "translation_language_codes")
        LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
        TRANSLATION_LANGUAGE_CODES_FIELD_NUMBER: _ClassVar[int]
        language_code: str
        translation_language_codes: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, language_code: _Optional[str] = ..., translation_language_codes: _Optional[_Iterable[str]] = ...) -> None: ...
    FINALIZE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    finalize: StreamingControl.Finalize
    update_languages: StreamingControl.UpdateLanguages
    def __init__(self, finalize: _Optional[_Union[StreamingControl.Finalize, _Mapping]] = ..., update_languages: _Optional[_Union[StreamingControl.UpdateLanguages, _Mapping]] = ...) -> None: ...

class ResumeSession(_message.Message):
    __slots__ = ("resume_token", "last_sequence", "audio_offset")
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_OFFSET_FIELD_NUMBER: _ClassVar[int]
    resume_token: str
    last_sequence: int
    audio_offset: _duration_pb2.Duration
    def __init__(self, resume_token: _Optional[str] = ..., last_sequence: _Optional[int] = ..., audio_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StreamingRecognizeRequest(_message.Message):
    __slots__ = ("streaming_config", "audio_content", "control", "resume")
    STREAMING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    streaming_config: StreamingRecognitionConfig
    audio_content: bytes
    control: StreamingControl
    resume: ResumeSession
    def __init__(self, streaming_config: _Optional[_Union[StreamingRecognitionConfig, _Mapping]] = ..., audio_content: _Optional[bytes] = ..., control: _Optional[_Union[StreamingControl, _Mapping]] = ..., resume: _Optional[_Union[ResumeSession, _Mapping]] = ...) -> None: ...

class WordInfo(_message.Message):
    __slots__ = ("word", "start_offset", "end_offset", "confidence")
    WORD_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    word: str
    start_offset: _duration_pb2.Duration
    end_offset: _duration_pb2.Duration
    confidence: float
    def __init__(self, word: _Optional[str] = ..., start_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., end_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., confidence: _Optional[float] = ...) -> None: ...

class Translation(_message.Message):
    __slots__ = ("language_code", "text", "backend", "latency", "error")
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    language_code: str
    text: str
    backend: str
    latency: _duration_pb2.Duration
    error: str
    def __init__(self, language_code: _Optional[str] = ..., text: _Optional[str] = ..., backend: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class Suppression(_message.Message):
    __slots__ = ("reason", "detail", "suppressed_transcript")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    reason: SuppressionReason
    detail: str
    suppressed_transcript: str
    def __init__(self, reason: _Optional[_Union[SuppressionReason, str]] = ..., detail: _Optional[str] = ..., suppressed_transcript: _Optional[str] = ...) -> None: ...

class StreamingRecognitionResult(_message.Message):
    __slots__ = ("segment_id", "revision", "is_final", "stability", "transcript", "confidence", "words", "start_offset", "end_offset", "language_code", "language_probability", "processing_latency", "suppression", "endpoint_reason", "translations")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    IS_FINAL_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_LATENCY_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSION_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSLATIONS_FIELD_NUMBER: _ClassVar[int]
    segment_id: int
    revision: int
    is_final: bool
    stability: float
    transcript: str
    confidence: float
    words: _containers.RepeatedCompositeFieldContainer[WordInfo]
    start_offset: _duration_pb2.Duration
    end_offset: _duration_pb2.Duration
    language_code: str
    language_probability: float
    processing_latency: _duration_pb2.Duration
    suppression: Suppression
    endpoint_reason: EndpointReason
    translations: _containers.RepeatedCompositeFieldContainer[Translation]
    def __init__(self, segment_id: _Optional[int] = ..., revision: _Optional[int] = ..., is_final: _Optional[bool] = ..., stability: _Optional[float] = ..., transcript: _Optional[str] = ..., confidence: _Optional[float] = ..., words: _Optional[_Iterable[_Union[WordInfo, _Mapping]]] = ..., start_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., end_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., language_code: _Optional[str] = ..., language_probability: _Optional[float] = ..., processing_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., suppression: _Optional[_Union[Suppression, _Mapping]] = ..., endpoint_reason: _Optional[_Union[EndpointReason, str]] = ..., translations: _Optional[_Iterable[_Union[Translation, _Mapping]]] = ...) -> None: ...

class SpeechEvent(_message.Message):
    __slots__ = ("type", "offset", "segment_id")
    class SpeechEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SPEECH_EVENT_TYPE_UNSPECIFIED: _ClassVar[SpeechEvent.SpeechEventType]
        SPEECH_EVENT_TYPE_ACTIVITY_BEGIN: _ClassVar[SpeechEvent.SpeechEventType]
        SPEECH_EVENT_TYPE_ACTIVITY_END: _ClassVar[SpeechEvent.SpeechEventType]
        SPEECH_EVENT_TYPE_END_OF_SINGLE_UTTERANCE: _ClassVar[SpeechEvent.SpeechEventType]
    SPEECH_EVENT_TYPE_UNSPECIFIED: SpeechEvent.SpeechEventType
    SPEECH_EVENT_TYPE_ACTIVITY_BEGIN: SpeechEvent.SpeechEventType
    SPEECH_EVENT_TYPE_ACTIVITY_END: SpeechEvent.SpeechEventType
    SPEECH_EVENT_TYPE_END_OF_SINGLE_UTTERANCE: SpeechEvent.SpeechEventType
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    type: SpeechEvent.SpeechEventType
    offset: _duration_pb2.Duration
    segment_id: int
    def __init__(self, type: _Optional[_Union[SpeechEvent.SpeechEventType, str]] = ..., offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., segment_id: _Optional[int] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "model", "resume_token", "resumed")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    model: str
    resume_token: str
    resumed: bool
    def __init__(self, session_id: _Optional[str] = ..., model: _Optional[str] = ..., resume_token: _Optional[str] = ..., resumed: _Optional[bool] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("accounted_offset", "received_offset", "resume_elsewhere")
    ACCOUNTED_OFFSET_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_OFFSET_FIELD_NUMBER: _ClassVar[int]
    RESUME_ELSEWHERE_FIELD_NUMBER: _ClassVar[int]
    accounted_offset: _duration_pb2.Duration
    received_offset: _duration_pb2.Duration
    resume_elsewhere: bool
    def __init__(self, accounted_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., received_offset: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., resume_elsewhere: _Optional[bool] = ...) -> None: ...

class StreamingRecognizeResponse(_message.Message):
    __slots__ = ("session", "speech_event", "result", "checkpoint", "sequence")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SPEECH_EVENT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    session: SessionStarted
    speech_event: SpeechEvent
    result: StreamingRecognitionResult
    checkpoint: Checkpoint
    sequence: int
    def __init__(self, session: _Optional[_Union[SessionStarted, _Mapping]] = ..., speech_event: _Optional[_Union[SpeechEvent, _Mapping]] = ..., result: _Optional[_Union[StreamingRecognitionResult, _Mapping]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...

class RecognizeRequest(_message.Message):
    __slots__ = ("config", "voice_activity", "audio_content")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    VOICE_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    config: RecognitionConfig
    voice_activity: VoiceActivityConfig
    audio_content: bytes
    def __init__(self, config: _Optional[_Union[RecognitionConfig, _Mapping]] = ..., voice_activity: _Optional[_Union[VoiceActivityConfig, _Mapping]] = ..., audio_content: _Optional[bytes] = ...) -> None: ...

class RecognizeResponse(_message.Message):
    __slots__ = ("results", "session_id", "total_billed_duration")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BILLED_DURATION_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StreamingRecognitionResult]
    session_id: str
    total_billed_duration: _duration_pb2.Duration
    def __init__(self, results: _Optional[_Iterable[_Union[StreamingRecognitionResult, _Mapping]]] = ..., session_id: _Optional[str] = ..., total_billed_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StreamCaptionsRequest(_message.Message):
    __slots__ = ("room", "interim_results", "language_code", "resume_after")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    INTERIM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_FIELD_NUMBER: _ClassVar[int]
    room: str
    interim_results: bool
    language_code: str
    resume_after: str
    def __init__(self, room: _Optional[str] = ..., interim_results: _Optional[bool] = ..., language_code: _Optional[str] = ..., resume_after: _Optional[str] = ...) -> None: ...

class Speaker(_message.Message):
    __slots__ = ("id", "label")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class StreamCaptionsResponse(_message.Message):
    __slots__ = ("session_id", "result", "replayed", "speaker", "source_language_code", "language_code", "text", "translation", "position")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    result: StreamingRecognitionResult
    replayed: bool
    speaker: Speaker
    source_language_code: str
    language_code: str
    text: str
    translation: Translation
    position: str
    def __init__(self, session_id: _Optional[str] = ..., result: _Optional[_Union[StreamingRecognitionResult, _Mapping]] = ..., replayed: _Optional[bool] = ..., speaker: _Optional[_Union[Speaker, _Mapping]] = ..., source_language_code: _Optional[str] = ..., language_code: _Optional[str] = ..., text: _Optional[str] = ..., translation: _Optional[_Union[Translation, _Mapping]] = ..., position: _Optional[str] = ...) -> None: ...
