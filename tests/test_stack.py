"""`dragoman stack`: a process per replica, two gateways balancing over them behind Envoy,
a caption room across the gateways through the stack's redis-server, one replica lost."""

import os
import signal

import grpc
import pytest

from dragoman.api.speech.v1 import speech_pb2_grpc
from dragoman.clients.wer import normalize
from tests.captions import Listener
from tests.conftest import DATA
from tests.processes import Launcher, children, gone, wait_serving
from tests.prometheus import scrape, value
from tests.streaming import audio_requests, config_request, finals, read_wav

SPOKEN = "ask not what your country can do for you"
REPLICAS = ("stt-1", "stt-2", "translate-1", "translate-2")
ON_FREE_PORTS = tuple(
    argument
    for port in ("--port", "--http-port", "--metrics-port", "--edge-port", "--edge-admin-port")
    for argument in (port, "0")
)


@pytest.fixture
def stack_processes():
    launched = Launcher(
        "stack",
        "--gateways",
        "2",
        "--stt-replicas",
        "2",
        "--translate-replicas",
        "2",
        *ON_FREE_PORTS,
    )
    yield launched
    if launched.process.poll() is None:
        launched.process.kill()
    launched.wait()


def _recognize(address: str) -> list:
    """jfk.wav with Portuguese translations, through Envoy; its final results."""
    audio = read_wav(DATA / "en" / "jfk.wav")
    request = config_request(audio)
    request.streaming_config.config.translation_language_codes.append("pt")
    with grpc.insecure_channel(address) as channel:
        stub = speech_pb2_grpc.SpeechServiceStub(channel)
        responses = list(stub.StreamingRecognize(iter([request, *audio_requests(audio)]), 120))
    results = finals(responses)
    assert SPOKEN in normalize(" ".join(r.transcript for r in results))
    assert all(r.translations[0].text and not r.translations[0].error for r in results)
    return results


def _room_across_gateways(launcher: Launcher) -> None:
    """A speaker on gateway-1, a listener in Portuguese on gateway-2: the captions cross
    through Redis, translated, labelled with the speaker."""
    audio = read_wav(DATA / "en" / "jfk.wav")
    request = config_request(audio)
    request.streaming_config.caption_room = "stack-room"
    request.streaming_config.speaker_label = "Ana"
    with (
        grpc.insecure_channel(launcher.endpoint("gateway-1")) as speaking,
        grpc.insecure_channel(launcher.endpoint("gateway-2")) as listening,
    ):
        listener = Listener(speech_pb2_grpc.SpeechServiceStub(listening), "stack-room", "pt")
        stub = speech_pb2_grpc.SpeechServiceStub(speaking)
        spoken = finals(list(stub.StreamingRecognize(iter([request, *audio_requests(audio)]), 120)))
        heard = listener.wait_for(len(spoken))
        listener.stop()
    assert listener.error is None
    assert [c.result.transcript for c in heard] == [r.transcript for r in spoken]
    assert all(c.speaker.label == "Ana" and c.language_code == "pt" for c in heard)
    assert all(c.translation.backend == "bergamot" and c.text for c in heard)


def _calls(launcher: Launcher, replica: str) -> float:
    """Transcribe or Translate calls a replica answered, from its own /metrics."""
    port = launcher.metrics_port(replica)
    service, method = (
        ("stt", "Transcribe") if replica.startswith("stt") else ("translate", "Translate")
    )
    return value(scrape(port), f"dragoman_{service}_calls_total", method=method, code="OK")


def test_utterances_spread_over_replicas_and_the_stack_outlives_one(stack_processes) -> None:
    launcher = stack_processes
    address = launcher.endpoint("gRPC through Envoy")
    expected = len(_recognize(address))
    _recognize(address)
    for replica in REPLICAS:
        assert _calls(launcher, replica) >= 1, f"{replica} got no call: not balanced"
    _room_across_gateways(launcher)

    killed = launcher.pid("stt-1")
    os.kill(killed, signal.SIGKILL)
    assert len(_recognize(address)) == expected, "every final arrived with stt-1 gone"

    wait_serving(launcher.endpoint("stt-1"), timeout_s=60)
    restarted_calls = 0.0
    for _ in range(3):
        _recognize(address)
        restarted_calls = _calls(launcher, "stt-1")
        if restarted_calls:
            break
    assert restarted_calls >= 1, "the gateway uses stt-1 again once it was started again"

    started = children(launcher.process.pid)
    assert sorted(started.values()).count("python3") == 6, started
    assert "redis-server" in started.values(), started
    launcher.process.send_signal(signal.SIGINT)
    assert launcher.wait() == 0
    assert all(gone(pid) for pid in started), "Envoy, Redis or a service outlived the stack"
