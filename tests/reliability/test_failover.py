"""Three STT replicas behind one gateway; one is killed while it transcribes."""

import os
import signal
import threading
import time

import grpc

from dragoman.api.speech.v1 import speech_pb2_grpc
from dragoman.clients.wer import normalize
from tests.conftest import DATA, own_gateway
from tests.otlp import running_collector
from tests.processes import Processes, free_port, wait_serving
from tests.prometheus import scrape, value
from tests.streaming import audio_requests, config_request, finals, paced, read_wav

STREAMS = 3
SPOKEN = "ask not what your country can do for you"


def _stream(address: str, into: list, index: int) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    requests = paced([config_request(audio, interim_results=True), *audio_requests(audio)], 0.1)
    with grpc.insecure_channel(address) as channel:
        try:
            into[index] = list(
                speech_pb2_grpc.SpeechServiceStub(channel).StreamingRecognize(requests, timeout=120)
            )
        except grpc.RpcError as error:
            into[index] = error


def test_a_replica_killed_mid_transcription_loses_no_final(stack, tmp_path) -> None:
    ports = [free_port() for _ in range(3)]
    metrics = [free_port() for _ in range(3)]
    with running_collector() as collector:
        processes = Processes(tmp_path, collector.environment())
        try:
            replicas = [
                processes.start(f"stt-{i}", "stt", "--port", str(port), metrics_port=metrics[i])
                for i, port in enumerate(ports)
            ]
            for port in ports:
                wait_serving(f"127.0.0.1:{port}")
            target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)
            with own_gateway(stack, stt_target=target) as app:
                baseline: list = [None]
                _stream(app.address, baseline, 0)
                expected = len(finals(baseline[0]))
                results: list = [None] * STREAMS
                threads = [
                    threading.Thread(target=_stream, args=(app.address, results, i))
                    for i in range(STREAMS)
                ]
                for thread in threads:
                    thread.start()
                deadline = time.monotonic() + 30
                while not value(
                    scrape(metrics[0]), "dragoman_stt_calls_in_flight", method="Transcribe"
                ):
                    assert time.monotonic() < deadline, "replica 0 never got a call"
                    time.sleep(0.02)
                os.kill(replicas[0].pid, signal.SIGKILL)
                for thread in threads:
                    thread.join(120)
        finally:
            processes.stop()
        retried = [
            s for s in collector.all() if s.attributes.get("dragoman.previous_attempts", 0) >= 1
        ]

    for responses in results:
        assert not isinstance(responses, grpc.RpcError), responses
        assert len(finals(responses)) == expected, "every utterance got its final"
        assert SPOKEN in normalize(" ".join(r.transcript for r in finals(responses)))
    assert replicas[0].returncode == -signal.SIGKILL
    assert retried, "the trace shows the call retried on a live replica"
    assert {s.service for s in retried} == {"dragoman-stt"}
