from dragoman.api.speech.v1 import speech_pb2 as _speech_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WebSocketRequest(_message.Message):
    __slots__ = ("streaming_config", "control", "end_of_audio", "resume")
    class EndOfAudio(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    STREAMING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    END_OF_AUDIO_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    streaming_config: _speech_pb2.StreamingRecognitionConfig
    control: _speech_pb2.StreamingControl
    end_of_audio: WebSocketRequest.EndOfAudio
    resume: _speech_pb2.ResumeSession
    def __init__(self, streaming_config: _Optional[_Union[_speech_pb2.StreamingRecognitionConfig, _Mapping]] = ..., control: _Optional[_Union[_speech_pb2.StreamingControl, _Mapping]] = ..., end_of_audio: _Optional[_Union[WebSocketRequest.EndOfAudio, _Mapping]] = ..., resume: _Optional[_Union[_speech_pb2.ResumeSession, _Mapping]] = ...) -> None: ...

class WebSocketError(_message.Message):
    __slots__ = ("code", "status", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    status: str
    message: str
    def __init__(self, code: _Optional[int] = ..., status: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class WebSocketResponse(_message.Message):
    __slots__ = ("session", "speech_event", "result", "error", "checkpoint", "sequence")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SPEECH_EVENT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    session: _speech_pb2.SessionStarted
    speech_event: _speech_pb2.SpeechEvent
    result: _speech_pb2.StreamingRecognitionResult
    error: WebSocketError
    checkpoint: _speech_pb2.Checkpoint
    sequence: int
    def __init__(self, session: _Optional[_Union[_speech_pb2.SessionStarted, _Mapping]] = ..., speech_event: _Optional[_Union[_speech_pb2.SpeechEvent, _Mapping]] = ..., result: _Optional[_Union[_speech_pb2.StreamingRecognitionResult, _Mapping]] = ..., error: _Optional[_Union[WebSocketError, _Mapping]] = ..., checkpoint: _Optional[_Union[_speech_pb2.Checkpoint, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...
