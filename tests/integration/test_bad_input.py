"""Every kind of bad input gets a clear status, and the service keeps serving."""

import threading
import time

import grpc
import pytest

from dragoman.api.speech.v1 import speech_pb2
from tests.conftest import DATA
from tests.streaming import audio_requests, config_request, finals, read_wav, stream

Request = speech_pb2.StreamingRecognizeRequest


def _fails(stub, requests: list[Request]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamingRecognize(iter(requests), timeout=60))
    return caught.value


def _config(**fields: object) -> Request:
    request = config_request()
    for name, value in fields.items():
        setattr(request.streaming_config.config, name, value)
    return request


@pytest.fixture
def healthy(stack):
    """After each bad input, a well-behaved stream still works."""
    yield stack
    audio = read_wav(DATA / "en" / "cards-001.wav")
    assert "clubs" in finals(stream(stack.stub, audio))[-1].transcript.lower()


AUDIO = Request(audio_content=b"\x00\x00" * 1600)


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        pytest.param([AUDIO], "first message must carry streaming_config", id="audio-first"),
        pytest.param([], "ended before its first message", id="empty-stream"),
        pytest.param(
            [Request(streaming_config=speech_pb2.StreamingRecognitionConfig())],
            "streaming_config.config is required",
            id="config-without-recognition-config",
        ),
        pytest.param(
            [_config(encoding=speech_pb2.AUDIO_ENCODING_UNSPECIFIED)],
            "AUDIO_ENCODING_LINEAR16, AUDIO_ENCODING_COMPRESSED",
            id="encoding-unspecified",
        ),
        pytest.param(
            [_config(sample_rate_hertz=7000)], "valid values are 8000-48000", id="rate-too-low"
        ),
        pytest.param(
            [_config(sample_rate_hertz=96000)], "valid values are 8000-48000", id="rate-too-high"
        ),
        pytest.param([_config(audio_channel_count=9)], "audio_channel_count", id="channels"),
        pytest.param(
            [_config(language_code="klingon")],
            "language_code 'klingon' is not a language code",
            id="malformed-language",
        ),
        pytest.param(
            [_config(language_code="xx")],
            "language_code 'xx' is not recognized by",
            id="unknown-language",
        ),
        pytest.param(
            [_config(language_code="es")],
            "not recognized by the English-only model 'tiny.en': valid values are en, or 'auto'",
            id="language-the-model-lacks",
        ),
        pytest.param([_config(model="huge-v9")], "tiny.en", id="unknown-model"),
        pytest.param(
            [config_request(), Request(audio_content=b"\x00\x00\x00")],
            "not a whole number",
            id="odd-length-pcm",
        ),
        pytest.param(
            [config_request(), AUDIO, config_request()],
            "only be sent in the first message",
            id="second-config",
        ),
        pytest.param(
            [config_request(), Request(audio_content=b"\x00" * (1024 * 1024 + 2))],
            "exceeds the limit",
            id="oversize-chunk",
        ),
        pytest.param([config_request(), Request()], "empty message", id="empty-message"),
    ],
)
def test_bad_stream_gets_invalid_argument(healthy, requests, expected) -> None:
    error = _fails(healthy.stub, requests)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in error.details()


def test_message_over_the_transport_limit_gets_resource_exhausted(healthy) -> None:
    error = _fails(healthy.stub, [config_request(), Request(audio_content=b"\x00" * (5 << 20))])
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_undecodable_compressed_audio_gets_invalid_argument(healthy) -> None:
    config = _config(encoding=speech_pb2.AUDIO_ENCODING_COMPRESSED)
    garbage = Request(audio_content=bytes(range(256)) * 64)
    error = _fails(healthy.stub, [config, garbage])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "could not decode" in error.details()


def test_config_then_half_close_ends_cleanly(healthy) -> None:
    """No result; the checkpoint that confirms the half-close says nothing was heard."""
    responses = list(healthy.stub.StreamingRecognize(iter([config_request()]), timeout=30))
    assert [r.WhichOneof("streaming_response") for r in responses] == ["session", "checkpoint"]
    assert responses[1].checkpoint.received_offset.ToNanoseconds() == 0


def test_recognize_without_config_gets_invalid_argument(healthy) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        healthy.stub.Recognize(speech_pb2.RecognizeRequest(audio_content=b"\x00\x00"), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_client_disconnect_mid_utterance_leaks_nothing(healthy) -> None:
    sessions = healthy.stack.gateway.sessions
    baseline_tasks = healthy.task_count()
    audio = read_wav(DATA / "en" / "jfk.wav")
    sent = threading.Event()

    def requests():
        yield config_request(audio, interim_results=True)
        for index, request in enumerate(audio_requests(audio)):
            if index == 40:
                sent.set()
            time.sleep(0.01)
            yield request

    call = healthy.stub.StreamingRecognize(requests(), timeout=60)
    next(call)
    assert sent.wait(10)
    assert sessions.active_streams == 1
    call.cancel()
    assert healthy.settled(baseline_tasks)
