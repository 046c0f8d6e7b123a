"""Everything a stream starts ends with it: a backend call held in flight when the stream
fails is cancelled, and no long-lived call starts because of whichever stream came first.

The translation service here is the real one, with Bergamot behind a gate that holds each
translation until the test opens it, so the order of events is forced, not hoped for.
"""

import time
from collections.abc import Iterator

import grpc
import pytest

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.translate.app import TranslateApp
from dragoman.translate.backends import load_backend
from dragoman.translate.settings import TranslateSettings
from tests.conftest import DATA, own_gateway
from tests.gates import GatedBackend, GatedLoader
from tests.streaming import audio_requests, config_request, finals, read_wav

Request = speech_pb2.StreamingRecognizeRequest


@pytest.fixture
def gated(stack) -> Iterator[tuple[TranslateApp, GatedBackend]]:
    """A translation replica of its own whose Bergamot is gated."""
    loader = GatedLoader(load_backend, GatedBackend)
    app = TranslateApp(
        TranslateSettings(host="127.0.0.1", port=0, metrics_port=0, drain_grace_s=1.0),
        load=loader,
    )

    async def start() -> None:
        await app.start()
        await app.wait_ready()

    stack.loop.run(start())
    [backend] = loader.loaded
    try:
        yield app, backend
    finally:
        backend.gate.set()
        stack.loop.run(app.stop())


def _in_flight(app: TranslateApp, method: str) -> float:
    value = app.metrics.registry.get_sample_value(
        "dragoman_translate_calls_in_flight", {"method": method}
    )
    return value or 0.0


def _wait_for(condition, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_translation_in_flight_when_the_stream_fails_is_cancelled(stack, gated) -> None:
    translation, backend = gated
    jfk = read_wav(DATA / "en" / "jfk.wav")
    config = config_request(jfk)
    config.streaming_config.config.translation_language_codes.append("pt")

    def requests() -> Iterator[Request]:
        yield config
        yield from audio_requests(jfk)
        assert backend.entered.wait(60), "a final's translation reached the backend"
        yield Request(control=speech_pb2.StreamingControl())

    with own_gateway(stack, translate_target=translation.address) as gateway:
        with grpc.insecure_channel(gateway.address) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            with pytest.raises(grpc.RpcError) as failed:
                list(stub.StreamingRecognize(requests(), timeout=60))
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _wait_for(lambda: _in_flight(translation, "Translate") == 0), (
            "the gateway cancelled the translation its failed stream had in flight"
        )
        assert not stack.streams_settled(besides=set()), "the stream's tasks ended"
        assert not backend.gate.is_set(), "the translation was still held when it was cancelled"


def test_the_translation_health_watch_starts_with_the_gateway(stack, gated) -> None:
    """gRPC's client-side health checking keeps one Watch call open per replica; it must
    start when the gateway does, not from the first stream that asks for a translation
    (which would make that stream look like it left a call behind)."""
    translation, backend = gated
    backend.gate.set()
    assert _in_flight(translation, "Watch") == 0
    with own_gateway(stack, translate_target=translation.address) as gateway:
        assert _wait_for(lambda: _in_flight(translation, "Watch") == 1), (
            "the gateway watches the translation service's health before any stream"
        )
        jfk = read_wav(DATA / "en" / "jfk.wav")
        config = config_request(jfk)
        config.streaming_config.config.translation_language_codes.append("pt")
        with grpc.insecure_channel(gateway.address) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            results = finals(list(stub.StreamingRecognize(iter([config, *audio_requests(jfk)]))))
        assert results[0].translations[0].text, "the stream was translated"
        assert _in_flight(translation, "Watch") == 1
        assert _wait_for(lambda: _in_flight(translation, "Translate") == 0)
