"""A sender faster than the allowed pace is held back by flow control, never refused:
every final arrives, over gRPC and over the WebSocket bridge, and a sender that is held
back has no more than a flow-control window of audio in flight to the gateway."""

import json
import threading
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from dragoman.api.speech.v1 import speech_pb2_grpc
from dragoman.clients import conversation
from dragoman.clients.audio_file import PcmAudio
from dragoman.clients.conversation import Conversation
from dragoman.clients.wer import normalize, word_error_rate
from tests.conftest import DATA, edge_in_front, own_gateway
from tests.streaming import audio_requests, config_request, finals, seconds
from tests.test_cli import dragoman
from tests.websocket import END_OF_AUDIO, audio_frames, config_frame, converse

Span = tuple[float, float, str]
"""A final's start and end offsets in stream time, and its transcript."""
MAX_IN_FLIGHT_BYTES = 256 * 1024
"""The gateway's 64 KiB stream window, a message being sent, and Envoy's windows and
32 KiB buffer when it is in between: measured 91 KiB direct and 222 KiB through Envoy."""


@pytest.fixture(scope="module")
def recording() -> Conversation:
    """Over two minutes of real speech in turns, built from the test clips."""
    built = conversation.build(conversation.load_clips(DATA))
    assert built.audio.duration_s >= 120
    return built


def _write_wav(path: Path, audio: PcmAudio) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(audio.channels)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate_hz)
        wav.writeframes(audio.data)
    return path


def _assert_every_turn_has_its_final(recording: Conversation, spans: list[Span]) -> None:
    said: dict[int, list[str]] = {turn.index: [] for turn in recording.turns}
    for start_s, end_s, text in spans:
        turn = conversation.turn_at(recording.turns, start_s, end_s)
        assert turn is not None
        said[turn.index].append(text)
    silent = [index for index, texts in said.items() if not normalize(" ".join(texts))]
    assert not silent, f"turns {silent} got no final result"
    wer = word_error_rate(
        [turn.text for turn in recording.turns],
        [" ".join(said[turn.index]) for turn in recording.turns],
    )
    assert wer < 0.2, f"the stream's WER is {wer:.3f}: words were lost"


def _offset_s(value: str | None) -> float:
    """A Duration in the protobuf JSON mapping ("12.340s")."""
    return float(value.removesuffix("s")) if value else 0.0


def test_transcribe_fast_of_a_long_recording_gets_every_final(stack, recording, tmp_path) -> None:
    path = _write_wav(tmp_path / "conversation.wav", recording.audio)
    result = dragoman(
        "transcribe", "--fast", "--json", "--target", stack.address, str(path), timeout_s=300
    )
    assert result.returncode == 0, result.stderr
    results = [json.loads(line).get("result", {}) for line in result.stdout.splitlines()]
    spans = [
        (_offset_s(r.get("startOffset")), _offset_s(r.get("endOffset")), r.get("transcript", ""))
        for r in results
        if r.get("isFinal")
    ]
    _assert_every_turn_has_its_final(recording, spans)


def test_transcribe_fast_past_the_burst_is_held_back_not_refused(stack) -> None:
    """A file sent with `--fast` that is mostly past the burst, as 169 s are at the default
    pace (30 s of burst, then 10 times real time), scaled down to jfk.wav's 11 s: the CLI is
    held back by flow control and gets its transcript, where it once got RESOURCE_EXHAUSTED."""
    with own_gateway(stack, max_speedup=4.0, speedup_burst_s=1.0) as app:
        result = dragoman(
            "transcribe", "--fast", "--json", "--target", app.address, str(DATA / "en" / "jfk.wav")
        )
        throttled = app.metrics.registry.get_sample_value(
            "dragoman_gateway_throttled_seconds_total"
        )
    assert result.returncode == 0, result.stderr
    assert throttled, "the sender was held back"
    results = [json.loads(line).get("result", {}) for line in result.stdout.splitlines()]
    transcript = " ".join(r.get("transcript", "") for r in results if r.get("isFinal"))
    assert "ask not what your country can do for you" in normalize(transcript)


def test_a_fast_sender_over_the_bridge_gets_every_final(stack, recording) -> None:
    frames = [config_frame(), *audio_frames(recording.audio), END_OF_AUDIO]
    talk = stack.loop.run(converse(stack.bridge_url, frames, timeout_s=300), timeout_s=300)
    assert talk.close_code == 1000, talk.errors()
    spans = [(seconds(f.start_offset), seconds(f.end_offset), f.transcript) for f in talk.finals()]
    _assert_every_turn_has_its_final(recording, spans)


def _most_in_flight(target: str, audio: PcmAudio, read_s: Callable[[], float]) -> int:
    """Streams `audio` as fast as gRPC lets it leave, and returns the most bytes that had
    left the client but were not yet read by the gateway's pipeline."""
    bytes_per_s = 2 * audio.sample_rate_hz
    sent = 0
    most = 0
    stop = threading.Event()

    def requests() -> Iterator:
        nonlocal sent
        yield config_request(audio)
        for request in audio_requests(audio):
            sent += len(request.audio_content)
            yield request

    def watch() -> None:
        nonlocal most
        while not stop.wait(0.02):
            most = max(most, round(sent - read_s() * bytes_per_s))

    watcher = threading.Thread(target=watch)
    watcher.start()
    with grpc.insecure_channel(target) as channel:
        stub = speech_pb2_grpc.SpeechServiceStub(channel)
        responses = list(stub.StreamingRecognize(requests(), timeout=120))
    stop.set()
    watcher.join()
    assert finals(responses), "the held-back stream was transcribed"
    return most


@pytest.mark.parametrize("path", ["direct", "envoy"])
def test_a_held_back_sender_has_at_most_a_window_in_flight(stack, recording, path) -> None:
    minute = PcmAudio(recording.audio.data[: 60 * 32000], 16000, 1)
    with own_gateway(stack, max_speedup=10.0, speedup_burst_s=2.0) as app:
        registry = app.metrics.registry

        def read_s() -> float:
            return registry.get_sample_value("dragoman_gateway_audio_seconds_total") or 0.0

        if path == "direct":
            in_flight = _most_in_flight(app.address, minute, read_s)
        else:
            with edge_in_front(app, stack.loop) as edge:
                in_flight = _most_in_flight(edge.address, minute, read_s)
        throttled = registry.get_sample_value("dragoman_gateway_throttled_seconds_total")
    assert throttled is not None
    assert throttled > 3, "the sender was held back"
    assert in_flight <= MAX_IN_FLIGHT_BYTES, f"{in_flight} bytes in flight"
