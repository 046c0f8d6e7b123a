"""Property-based tests: random configs, audio, message orders, disconnects and WebSocket
frames against the real gateway, while a well-behaved stream runs beside them.

Whatever arrives, a call ends with a status a client can act on (never UNKNOWN or
INTERNAL), nothing that a call started is left running once it ended (checked after every
example, so that hypothesis shrinks a leak to the example that caused it), and the
well-behaved stream is not disturbed.
"""

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dragoman.api.speech.v1 import speech_pb2
from dragoman.clients.wer import normalize
from tests.conftest import DATA
from tests.streaming import audio_requests, config_request, paced, read_wav
from tests.websocket import config_frame, converse

Request = speech_pb2.StreamingRecognizeRequest
ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
"""What the gateway may answer to anything a client sends (a client's own cancel aside)."""
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)

durations = st.builds(
    lambda s: {"seconds": s[0], "nanos": s[1]},
    st.tuples(st.integers(-5, 40), st.integers(0, 999_999_999)),
)
recognition_configs = st.builds(
    speech_pb2.RecognitionConfig,
    encoding=st.integers(0, 4),
    sample_rate_hertz=st.one_of(st.sampled_from([0, 8000, 16000, 48000]), st.integers(-1, 10**6)),
    audio_channel_count=st.integers(-1, 12),
    language_code=st.one_of(st.sampled_from(["", "en", "auto", "pt", "EN "]), st.text(max_size=8)),
    model=st.one_of(st.sampled_from(["", "tiny.en", "base"]), st.text(max_size=12)),
    enable_word_time_offsets=st.booleans(),
    translation_language_codes=st.lists(
        st.one_of(st.sampled_from(["pt", "en", "de"]), st.text(max_size=5)), max_size=3
    ),
)
voice_activity = st.builds(
    lambda a, s, t, e, p, m, n: speech_pb2.VoiceActivityConfig(
        aggressiveness=a,
        set_aggressiveness=s,
        speech_threshold=t,
        endpoint_silence=e,
        pre_speech=p,
        max_utterance_duration=m,
        min_speech=n,
    ),
    st.one_of(st.none(), st.integers(-3, 6)),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    durations,
    durations,
    durations,
    durations,
)
streaming_configs = st.builds(
    lambda config, vad, interim, single, events, room: Request(
        streaming_config=speech_pb2.StreamingRecognitionConfig(
            config=config,
            voice_activity=vad,
            interim_results=interim,
            single_utterance=single,
            enable_speech_events=events,
            caption_room=room,
        )
    ),
    recognition_configs,
    voice_activity,
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.one_of(st.just(""), st.text(max_size=70)),
)
audio = st.builds(lambda data: Request(audio_content=data), st.binary(max_size=6400))
controls = st.one_of(
    st.just(Request(control=speech_pb2.StreamingControl(finalize={}))),
    st.builds(
        lambda language, targets: Request(
            control=speech_pb2.StreamingControl(
                update_languages=speech_pb2.StreamingControl.UpdateLanguages(
                    language_code=language, translation_language_codes=targets
                )
            )
        ),
        st.sampled_from(["", "en", "pt", "xx"]),
        st.lists(st.sampled_from(["pt", "en", "zz"]), max_size=2),
    ),
    st.just(Request(control=speech_pb2.StreamingControl())),
    st.just(Request()),
)
messages = st.lists(st.one_of(streaming_configs, audio, controls), max_size=12)


@dataclass
class Beside:
    """The well-behaved stream's sessions so far: their tasks are not leftovers."""

    sessions: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def beside(stack) -> Iterator[Beside]:
    """A well-behaved real-time stream, again and again through every fuzz test of the
    module; at the end, its transcripts are right and nothing is left running."""
    baseline_tasks = stack.task_count()
    jfk = read_wav(DATA / "en" / "jfk.wav")
    texts: list[str] = []
    running = Beside()
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            finals = []
            for response in stack.stub.StreamingRecognize(
                paced([config_request(jfk), *audio_requests(jfk)], 0.1), timeout=120
            ):
                if response.HasField("session"):
                    running.sessions.add(response.session.session_id)
                elif response.result.is_final:
                    finals.append(response.result.transcript)
            texts.append(" ".join(finals))

    thread = threading.Thread(target=run)
    thread.start()
    yield running
    stop.set()
    thread.join(120)
    assert texts, "expected the well-behaved stream to have run"
    for text in texts:
        assert "ask not what your country can do for you" in normalize(text), (
            f"expected the well-behaved stream's transcript undisturbed, got {text!r}"
        )
    assert stack.settled(baseline_tasks), (
        f"expected no stream left and at most the {baseline_tasks} tasks from before the "
        f"module, found {stack.task_count()} tasks; of streams: {stack.stream_leftovers()}"
    )


@contextlib.contextmanager
def _leaves_nothing(stack, beside: Beside, example: str) -> Iterator[None]:
    """Fails, naming `example`, when what runs in the block leaves any of a stream behind
    once it has ended. What was left before it (by an example that has failed already) is
    not blamed on it, so that hypothesis shrinks to an example that leaks by itself."""
    before = stack.stream_leftovers(besides=beside.sessions)
    yield
    left = stack.streams_settled(besides=beside.sessions, before=before)
    assert not left, f"{example} left behind once its call had ended: {left}"


def _kinds(call_requests: list[Request]) -> str:
    return ", ".join(r.WhichOneof("streaming_request") or "empty" for r in call_requests)


def _status(call_requests: list[Request], stack) -> tuple[grpc.StatusCode, str]:
    """The status and message the stream ended with."""
    try:
        list(stack.stub.StreamingRecognize(iter(call_requests), timeout=60))
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def _assert_answers_clearly(call_requests: list[Request], stack, beside: Beside) -> None:
    example = f"the stream of [{_kinds(call_requests)}]"
    with _leaves_nothing(stack, beside, example):
        code, message = _status(call_requests, stack)
    assert code in ANSWERS, (
        f"{example}: expected one of {sorted(c.name for c in ANSWERS)}, got {code.name}: {message}"
    )
    assert code == grpc.StatusCode.OK or message, f"{example}: {code.name} came without a message"


@FUZZ
@given(first=streaming_configs, rest=messages)
def test_random_configs_and_messages_get_a_clear_status(stack, beside, first, rest) -> None:
    _assert_answers_clearly([first, *rest], stack, beside)


@FUZZ
@given(rest=messages)
def test_random_message_orders_after_a_valid_config_get_a_clear_status(stack, beside, rest) -> None:
    _assert_answers_clearly([config_request(), *rest], stack, beside)


@FUZZ
@given(encoding=st.sampled_from([1, 2]), chunks=st.lists(st.binary(max_size=4000), max_size=8))
def test_random_audio_bytes_get_a_clear_status(stack, beside, encoding, chunks) -> None:
    config = config_request()
    config.streaming_config.config.encoding = encoding
    _assert_answers_clearly([config, *(Request(audio_content=c) for c in chunks)], stack, beside)


@FUZZ
@given(
    sent=st.integers(0, 30), chunk_ms=st.sampled_from([10, 50, 100]), wait_ms=st.integers(0, 300)
)
def test_random_disconnects_get_cleaned_up(stack, beside, sent, chunk_ms, wait_ms) -> None:
    """A client vanishes after `sent` chunks and `wait_ms`; its stream leaves nothing
    behind."""
    jfk = read_wav(DATA / "en" / "jfk.wav")
    hold = threading.Event()

    def requests() -> Iterator[Request]:
        yield config_request(jfk, interim_results=True)
        yield from list(audio_requests(jfk, chunk_ms))[:sent]
        hold.wait(10)

    example = f"the client gone after {sent} chunks of {chunk_ms} ms and {wait_ms} ms"
    with _leaves_nothing(stack, beside, example):
        call = stack.stub.StreamingRecognize(requests(), timeout=60)
        first = next(call)
        assert first.HasField("session"), f"{example}: expected the session first, got {first}"
        time.sleep(wait_ms / 1000)
        call.cancel()
        hold.set()


text_frames = st.one_of(
    st.text(max_size=200),
    st.builds(
        json.dumps, st.dictionaries(st.text(max_size=20), st.integers() | st.text(), max_size=4)
    ),
    st.sampled_from(
        [
            config_frame(),
            '{"control":{"finalize":{}}}',
            '{"endOfAudio":{}}',
            '{"streamingConfig":{"config":{"encoding":"AUDIO_ENCODING_MP3"}}}',
            '{"control":{"updateLanguages":{"languageCode":7}}}',
            "[]",
            "null",
        ]
    ),
)
frames = st.lists(st.one_of(text_frames, st.binary(max_size=3000)), max_size=10)


@FUZZ
@given(sequence=frames)
def test_malformed_websocket_frames_get_a_clear_close(stack, beside, sequence) -> None:
    example = f"the WebSocket conversation of {len(sequence)} frames"
    with _leaves_nothing(stack, beside, example):
        ended = [*sequence, '{"endOfAudio":{}}']
        conversation = stack.loop.run(converse(stack.bridge_url, ended))
    allowed = {1000} | {4000 + code.value[0] for code in ANSWERS}
    assert conversation.close_code in allowed, (
        f"{example}: expected a close code of {sorted(allowed)}, got {conversation.close_code}"
    )
    if conversation.close_code != 1000:
        errors = conversation.errors()
        assert len(errors) == 1, f"{example}: expected one error before the close, got {errors}"
        assert errors[0].message, f"{example}: close {conversation.close_code} without a message"
