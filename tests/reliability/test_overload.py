"""An STT service with room for one waiting job, under several streams at once: interims
give way, and every final is either delivered or named in the error that ends its stream.

The model is real but gated (tests/gates.py): one call held inside it and one waiting
behind it fill the queue, so every request the streams make meanwhile is refused, on a
machine of any speed, until the test opens the gate.
"""

import logging
import re
import threading
import time

import grpc
import pytest

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.api.stt.v1 import stt_pb2, stt_pb2_grpc
from dragoman.logs import session_id_var
from dragoman.stt.app import SttApp, load_engine
from dragoman.stt.settings import SttSettings
from tests.conftest import DATA, LoopThread, own_gateway
from tests.gates import HOLD_TIMEOUT_S, GatedEngine, GatedLoader
from tests.prometheus import scrape, value
from tests.streaming import audio_requests, config_request, finals, read_wav, samples, stream

STREAMS = 4
RETRIED = "asking the STT service again"
"""What the gateway logs each time it asks again for a final that was refused."""


class _Stream(threading.Thread):
    """One client's call, to its end; `opened` is set once its first response (the
    session's id) has arrived, or the call has ended without one."""

    def __init__(self, address: str, requests: list[speech_pb2.StreamingRecognizeRequest]) -> None:
        super().__init__()
        self._address = address
        self._requests = requests
        self.responses: list[speech_pb2.StreamingRecognizeResponse] = []
        self.error: grpc.RpcError | None = None
        self.opened = threading.Event()

    @property
    def session_id(self) -> str:
        assert self.opened.wait(HOLD_TIMEOUT_S), "the stream never got its first response"
        assert self.responses, f"expected the session first, the call ended: {self.error}"
        first = self.responses[0]
        assert first.HasField("session"), f"expected the session first, got {first}"
        return first.session.session_id

    def run(self) -> None:
        with grpc.insecure_channel(self._address) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            try:
                for response in stub.StreamingRecognize(iter(self._requests), timeout=120):
                    self.responses.append(response)
                    self.opened.set()
            except grpc.RpcError as error:
                self.error = error
            finally:
                self.opened.set()


def _fill_the_queue(
    stt: SttApp, engine: GatedEngine, channel: grpc.Channel, loop: LoopThread, audio: bytes
) -> list[grpc.Future]:
    """One final held inside the model and one waiting behind it: with room for one
    waiting job, the queue is full, and a final cannot push out another final."""
    stub = stt_pb2_grpc.SttServiceStub(channel)
    request = stt_pb2.TranscribeRequest(audio_pcm16=audio, priority=stt_pb2.PRIORITY_FINAL)
    held = stub.Transcribe.future(request, timeout=120)
    assert engine.entered.wait(HOLD_TIMEOUT_S), "the first call never reached the model"
    waiting = stub.Transcribe.future(request, timeout=120)

    async def queued() -> int:
        return stt.scheduler.queued

    deadline = time.monotonic() + HOLD_TIMEOUT_S
    while (now := loop.run(queued())) != 1:
        assert time.monotonic() < deadline, f"expected one call waiting, found {now}"
        time.sleep(0.01)
    return [held, waiting]


def _wait_for_retries(caplog: pytest.LogCaptureFixture, sessions: set[str]) -> None:
    """Until the gateway has asked again for a refused final of each of `sessions`."""
    deadline = time.monotonic() + HOLD_TIMEOUT_S
    while missing := sessions - {
        record.session_id for record in caplog.records if RETRIED in record.getMessage()
    }:
        assert time.monotonic() < deadline, (
            f"expected a refused final of each stream asked for again; none of {sorted(missing)}"
        )
        time.sleep(0.05)


def _stamp_session(record: logging.LogRecord) -> bool:
    """caplog's handler lacks the service's context filter: each record gets the id of
    the stream that logged it as that filter would, to tell the streams' retries apart."""
    record.session_id = session_id_var.get()
    return True


@pytest.mark.parametrize("final_persist_s", [60.0, 0.0], ids=["finals-persist", "no-patience"])
def test_overload_degrades_interims_first_and_loses_no_final_silently(
    stack, caplog: pytest.LogCaptureFixture, final_persist_s: float
) -> None:
    """Finals are retried while interims are refused; with no patience left for finals,
    each stream that loses one ends with an error naming it."""
    caplog.set_level(logging.INFO, logger="dragoman.gateway.stt_client")
    caplog.handler.addFilter(_stamp_session)
    loader = GatedLoader(load_engine, GatedEngine)
    stt = SttApp(SttSettings(host="127.0.0.1", port=0, metrics_port=0, max_queue=1), load=loader)

    async def start() -> None:
        await stt.start()
        await stt.wait_ready()

    stack.loop.run(start())
    [engine] = loader.loaded
    audio = read_wav(DATA / "en" / "jfk.wav")
    one_second = samples(audio)[: audio.sample_rate_hz].tobytes()
    overloaded = [config_request(audio, interim_results=True), *audio_requests(audio, 20)]
    try:
        with (
            own_gateway(stack, stt_target=stt.address, final_persist_s=final_persist_s) as app,
            grpc.insecure_channel(stt.address) as stt_channel,
        ):
            filling = _fill_the_queue(stt, engine, stt_channel, stack.loop, one_second)
            streams = [_Stream(app.address, overloaded) for _ in range(STREAMS)]
            for each in streams:
                each.start()
            sessions = {each.session_id for each in streams}
            if final_persist_s:
                _wait_for_retries(caplog, sessions)
            else:
                for each in streams:
                    each.join(HOLD_TIMEOUT_S)
            engine.gate.set()
            for each in streams:
                each.join(HOLD_TIMEOUT_S)
            alive = sum(each.is_alive() for each in streams)
            assert not alive, f"expected every stream ended, {alive} still running"
            for call in filling:
                assert call.exception() is None, (
                    f"expected the calls that filled the queue served: {call.exception()}"
                )
            with grpc.insecure_channel(app.address) as channel:
                baseline = finals(stream(speech_pb2_grpc.SpeechServiceStub(channel), audio))
        shed = value(
            scrape(stt.metrics.port),
            "dragoman_stt_calls_total",
            method="Transcribe",
            code="RESOURCE_EXHAUSTED",
        )
    finally:
        engine.gate.set()
        stack.loop.run(stt.stop())

    assert shed > 0, "expected the full STT service to refuse calls, it refused none"
    retried = {r.session_id for r in caplog.records if RETRIED in r.getMessage()}
    for each in streams:
        delivered = [r.segment_id for r in finals(each.responses)]
        assert delivered == list(range(1, len(delivered) + 1)), (
            f"expected finals in order, got segments {delivered}"
        )
        if final_persist_s:
            assert each.error is None, (
                f"expected a refused final to be asked for again until it arrived, the "
                f"stream ended {each.error.code().name}: {each.error.details()}"
            )
            assert len(delivered) == len(baseline), (
                f"expected all {len(baseline)} finals of the clip, got {len(delivered)}"
            )
            continue
        assert each.error is not None, "expected the refused final to end the stream"
        assert each.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (
            f"expected RESOURCE_EXHAUSTED, got {each.error.code().name}: {each.error.details()}"
        )
        named = re.search(r"segment (\d+) was not transcribed", each.error.details())
        assert named, f"expected the error to name the lost segment: {each.error.details()}"
        assert (int(named.group(1)), delivered) == (1, []), (
            f"expected segment 1, the first, lost and named; segment {named.group(1)} was "
            f"named after finals {delivered}"
        )
    if not final_persist_s:
        assert not retried, f"with no patience, no final is asked for again: {retried}"
