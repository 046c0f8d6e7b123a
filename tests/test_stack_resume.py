"""Sessions that outlive their gateway, in `dragoman stack` (two gateways behind Envoy,
sessions in the stack's redis-server): the gateway serving a stream is SIGKILLed
mid-utterance, then both gateways are restarted one after the other (a rolling deploy),
and the client resumes through Envoy each time."""

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from dragoman.api.speech.v1 import speech_pb2_grpc
from dragoman.clients.audio_file import PcmAudio
from dragoman.clients.streaming import SendLog, stream_audio, streaming_config
from dragoman.clients.wer import normalize, word_error_rate
from tests.conftest import DATA
from tests.processes import Launcher, children, wait_serving
from tests.prometheus import scrape, value
from tests.streaming import read_wav, samples, seconds, silence
from tests.test_stack import ON_FREE_PORTS

CLIPS = ("en/librivox-0870.wav", "en/jfk.wav", "en/librivox-0880.wav", "en/librivox-0890.wav")
GATEWAYS = ("gateway-1", "gateway-2")


@pytest.fixture(scope="module")
def stack_processes():
    launched = Launcher(
        "stack",
        "--gateways",
        "2",
        "--stt-replicas",
        "1",
        "--translate-replicas",
        "1",
        *ON_FREE_PORTS,
    )
    yield launched
    launched.process.send_signal(signal.SIGINT)
    launched.wait()


def _conversation() -> PcmAudio:
    parts = []
    for clip in CLIPS:
        parts += [samples(read_wav(DATA / clip)), silence(1.5, 16000)]
    return PcmAudio(np.concatenate(parts).astype("<i2").tobytes(), 16000, 1)


def _pid(launcher: Launcher, gateway: str) -> int:
    """The gateway's process now (the stack starts a new one after each exit), found by the
    metrics port in its environment."""
    wanted = f"DRAGOMAN_GATEWAY_METRICS_PORT={launcher.metrics_port(gateway)}".encode()
    for pid in children(launcher.process.pid):
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environment:
            return pid
    raise AssertionError(f"no process of {gateway}")


def _serving_the_stream(launcher: Launcher) -> str | None:
    for gateway in GATEWAYS:
        try:
            streams = value(
                scrape(launcher.metrics_port(gateway)),
                "dragoman_gateway_active_streams",
                transport="grpc",
            )
        except OSError:
            continue
        if streams:
            return gateway
    return None


def _stream(address: str, audio: PcmAudio, log: SendLog, *, realtime: bool = True) -> list:
    async def run() -> list:
        config = streaming_config(audio, language_code="en", interim_results=True)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            return [
                response.result
                async for _, response in stream_audio(
                    stub, audio, config, log=log, realtime=realtime
                )
                if response.HasField("result") and response.result.is_final
            ]

    return asyncio.run(run())


def _wait_for_speech(launcher: Launcher, at_s: float, started: float) -> str:
    """Waits until `at_s` into the stream; the gateway serving it then."""
    time.sleep(max(0.0, started + at_s - time.monotonic()))
    deadline = time.monotonic() + 10
    while (gateway := _serving_the_stream(launcher)) is None:
        assert time.monotonic() < deadline, "no gateway serves the stream"
        time.sleep(0.2)
    return gateway


def test_a_stream_outlives_a_killed_gateway_and_a_rolling_deploy(stack_processes) -> None:
    launcher = stack_processes
    address = launcher.endpoint("gRPC through Envoy")
    audio = _conversation()
    unbroken = _stream(address, audio, SendLog(), realtime=False)

    log = SendLog()
    events: list[str] = []
    broken: list = []
    started = time.monotonic()
    streaming = threading.Thread(target=lambda: broken.extend(_stream(address, audio, log)))
    streaming.start()

    killed = _wait_for_speech(launcher, 4.3, started)
    os.kill(_pid(launcher, killed), signal.SIGKILL)
    events.append(f"SIGKILL {killed}")
    for gateway in GATEWAYS:
        wait_serving(launcher.endpoint(gateway), timeout_s=60)
    drained = []
    for at_s in (14.0, 23.0):
        gateway = _wait_for_speech(launcher, at_s, started)
        os.kill(_pid(launcher, gateway), signal.SIGTERM)
        events.append(f"SIGTERM {gateway}")
        drained.append(gateway)
        time.sleep(2)
        wait_serving(launcher.endpoint(gateway), timeout_s=60)
    streaming.join(timeout=120)
    assert not streaming.is_alive()

    assert sorted(drained) == list(GATEWAYS), f"the stream moved with each deploy: {events}"
    assert len(log.resumed_at) == 3, (events, log.resumed_at)
    assert [r.segment_id for r in broken] == list(range(1, len(broken) + 1)), events
    ends = [seconds(r.end_offset) for r in broken]
    assert ends == sorted(ends), "offsets continue across the resumes"
    assert seconds(broken[-1].end_offset) > len(audio.data) / 2 / 16000 - 3
    reference = normalize(" ".join(r.transcript for r in unbroken))
    text = normalize(" ".join(r.transcript for r in broken))
    assert word_error_rate([reference], [text]) <= 0.05, (events, reference, text)
    assert abs(len(broken) - len(unbroken)) <= 1
