"""An STT service with room for one waiting job, under several streams at once: interims
give way, and every final is either delivered or named in the error that ends its stream."""

import re
import threading

import grpc
import pytest
from dragoman.stt.app import SttApp
from dragoman.stt.settings import SttSettings

from dragoman.api.speech.v1 import speech_pb2_grpc
from tests.conftest import DATA, own_gateway
from tests.prometheus import scrape, value
from tests.streaming import audio_requests, config_request, finals, read_wav

STREAMS = 4


@pytest.mark.parametrize("final_persist_s", [20.0, 0.0], ids=["finals-persist", "no-patience"])
def test_overload_degrades_interims_first_and_loses_no_final_silently(
    stack, final_persist_s
) -> None:
    """Finals are retried while interims are refused; with no patience left for finals,
    each stream that loses one ends with an error naming it."""
    stt = SttApp(SttSettings(host="127.0.0.1", port=0, metrics_port=0, max_queue=1))

    async def start() -> None:
        await stt.start()
        await stt.wait_ready()

    stack.loop.run(start())
    audio = read_wav(DATA / "en" / "jfk.wav")
    outcomes: list = [None] * STREAMS
    try:
        with own_gateway(stack, stt_target=stt.address, final_persist_s=final_persist_s) as app:
            baseline = finals(
                list(
                    speech_pb2_grpc.SpeechServiceStub(
                        grpc.insecure_channel(app.address)
                    ).StreamingRecognize(iter([config_request(audio), *audio_requests(audio)]))
                )
            )

            def run(index: int) -> None:
                with grpc.insecure_channel(app.address) as channel:
                    responses: list = []
                    try:
                        responses.extend(
                            speech_pb2_grpc.SpeechServiceStub(channel).StreamingRecognize(
                                iter(
                                    [
                                        config_request(audio, interim_results=True),
                                        *audio_requests(audio, chunk_ms=20),
                                    ]
                                ),
                                timeout=120,
                            )
                        )
                    except grpc.RpcError as error:
                        outcomes[index] = (responses, error)
                        return
                    outcomes[index] = (responses, None)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(STREAMS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(180)
        shed = value(
            scrape(stt.metrics.port),
            "dragoman_stt_calls_total",
            method="Transcribe",
            code="RESOURCE_EXHAUSTED",
        )
    finally:
        stack.loop.run(stt.stop())

    assert shed > 0, "the STT service was overloaded"
    for responses, error in outcomes:
        delivered = [r.segment_id for r in finals(responses)]
        assert delivered == list(range(1, len(delivered) + 1)), "finals arrive in order"
        if error is None:
            assert len(delivered) == len(baseline), "a stream that ends OK has every final"
            continue
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        named = re.search(r"segment (\d+) was not transcribed", error.details())
        assert named, error.details()
        assert int(named.group(1)) == len(delivered) + 1, "the error names the lost utterance"
    failed = [error for _, error in outcomes if error is not None]
    if final_persist_s:
        assert not failed, "finals that persist all arrive"
    else:
        assert failed, "without patience, a refused final ends its stream, named"
