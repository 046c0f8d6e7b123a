"""Gateway, STT and translation as three processes, as operators run them.

An in-memory OTLP collector in the test receives every process's spans; the gateway's
health is watched from before its STT service exists until after SIGTERM.
"""

import asyncio
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.launch.edge import Edge
from dragoman.launch.stack_settings import EdgeSettings
from tests.conftest import DATA
from tests.grpc_web import HEADERS, frame
from tests.otlp import Collector, ReceivedSpan, running_collector
from tests.processes import Processes, free_port, wait_serving
from tests.streaming import audio_requests, config_request, finals, paced, read_wav
from tests.websocket import END_OF_AUDIO, audio_frames, config_frame, converse

GATEWAY_SERVICE = "dragoman.speech.v1.SpeechService"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
DRAIN_GRACE_S = 8.0


@dataclass
class HealthWatch:
    """Every status the gateway's health Watch stream reports, in order."""

    statuses: list[str] = field(default_factory=list)

    def follow(self, target: str) -> None:
        def watch() -> None:
            with grpc.insecure_channel(target) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                request = health_pb2.HealthCheckRequest(service=GATEWAY_SERVICE)
                try:
                    for response in stub.Watch(request, wait_for_ready=True):
                        self.statuses.append(
                            health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
                        )
                except grpc.RpcError:
                    self.statuses.append("ENDED")

        threading.Thread(target=watch, daemon=True).start()

    def wait_for(self, status: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while status not in self.statuses and time.monotonic() < deadline:
            time.sleep(0.1)
        return status in self.statuses


@dataclass
class Cluster:
    gateway: str
    gateway_process: subprocess.Popen
    edge: Edge
    collector: Collector
    watch: HealthWatch
    logs: Path

    def gateway_log(self) -> list[dict]:
        return [
            json.loads(line)
            for line in (self.logs / "gateway.log").read_text().splitlines()
            if line.startswith("{")
        ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, loop_thread) -> Iterator[Cluster]:
    stt, translator, gateway, gateway_http = (free_port() for _ in range(4))
    with running_collector() as collector:
        processes = Processes(tmp_path_factory.mktemp("logs"), collector.environment())
        try:
            gateway_process = processes.start(
                "gateway",
                "gateway",
                "--port", str(gateway),
                "--http-port", str(gateway_http),
                "--stt-target", f"127.0.0.1:{stt}",
                "--translate-target", f"127.0.0.1:{translator}",
                "--drain-grace-s", str(DRAIN_GRACE_S),
            )  # fmt: skip
            watch = HealthWatch()
            watch.follow(f"127.0.0.1:{gateway}")
            assert watch.wait_for("NOT_SERVING", 60), "the gateway came up NOT_SERVING"
            processes.start("stt", "stt", "--port", str(stt))
            processes.start("translator", "translator", "--port", str(translator))
            assert watch.wait_for("SERVING", 120), (processes.logs / "gateway.log").read_text()
            wait_serving(f"127.0.0.1:{translator}")
            edge = Edge(
                EdgeSettings(port=0, admin_port=0),
                grpc_addresses=[("127.0.0.1", gateway)],
                http_addresses=[("127.0.0.1", gateway_http)],
            )
            loop_thread.run(edge.start())
            try:
                yield Cluster(
                    f"127.0.0.1:{gateway}", gateway_process, edge, collector, watch, processes.logs
                )
            finally:
                loop_thread.run(edge.stop())
        finally:
            processes.stop()


def _span(spans: list[ReceivedSpan], span_id: bytes) -> ReceivedSpan:
    return next(s for s in spans if s.span.span_id == span_id)


def test_one_trace_follows_a_stream_through_all_three_services(cluster) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    request = config_request(audio)
    request.streaming_config.config.translation_language_codes.append("pt")
    with grpc.insecure_channel(cluster.gateway) as channel:
        responses = list(
            speech_pb2_grpc.SpeechServiceStub(channel).StreamingRecognize(
                iter([request, *audio_requests(audio)]),
                metadata=[("traceparent", f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01")],
                timeout=120,
            )
        )
    results = finals(responses)
    session_id = responses[0].session.session_id

    def complete() -> bool:
        spans = cluster.collector.in_trace(TRACE_ID)
        return (
            sum(s.span.name == "utterance" for s in spans) == len(results)
            and any(s.span.name.endswith("/StreamingRecognize") for s in spans)
            and {s.service for s in spans}
            == {"dragoman-gateway", "dragoman-stt", "dragoman-translate"}
        )

    deadline = time.monotonic() + 20
    while not complete() and time.monotonic() < deadline:
        time.sleep(0.2)
    spans = cluster.collector.in_trace(TRACE_ID)
    assert complete(), sorted({(s.service, s.span.name) for s in spans})

    [stream] = [s for s in spans if s.span.name.endswith("SpeechService/StreamingRecognize")]
    assert stream.span.parent_span_id.hex() == CLIENT_SPAN_ID, "the caller's trace goes on"
    utterances = [s for s in spans if s.span.name == "utterance"]
    for utterance in utterances:
        assert utterance.span.parent_span_id == stream.span.span_id
        attributes = utterance.attributes
        assert attributes["dragoman.session_id"] == session_id
        assert attributes["dragoman.model"] == "tiny.en"
        assert attributes["dragoman.language"] == "en"
        assert attributes["dragoman.latency_s"] > 0
        assert attributes["dragoman.audio_s"] > 0
        assert attributes["dragoman.revision"] >= 1
        assert "dragoman.suppression_reason" in attributes
    utterance_ids = {u.span.span_id for u in utterances}
    segments = {u.attributes["dragoman.segment_id"] for u in utterances}
    assert segments == {r.segment_id for r in results}
    vads = [s for s in spans if s.span.name == "vad"]
    assert {v.span.parent_span_id for v in vads} == utterance_ids

    for service, method in (("dragoman-stt", "Transcribe"), ("dragoman-translate", "Translate")):
        served = [s for s in spans if s.service == service and s.span.name.endswith(method)]
        assert served, f"no {method} span"
        for server in served:
            client = _span(spans, server.span.parent_span_id)
            assert client.service == "dragoman-gateway"
            assert client.span.parent_span_id in utterance_ids, "each call hangs off its utterance"
            children = {s.span.name for s in spans if s.span.parent_span_id == server.span.span_id}
            assert children == {"queue", "model"}
            assert server.attributes["dragoman.job.total_s"] > 0

    logged = [e for e in cluster.gateway_log() if e.get("trace_id") == TRACE_ID]
    assert any(e.get("session_id") == session_id and e.get("segment_id") for e in logged)


def _wait_for_trace(
    collector: Collector, trace_id: str, services: set[str], root: str
) -> list[ReceivedSpan]:
    """The trace's spans once every service has sent some and the root span has ended."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        spans = collector.in_trace(trace_id)
        if {s.service for s in spans} >= services and any(s.span.name == root for s in spans):
            return spans
        time.sleep(0.2)
    return collector.in_trace(trace_id)


def test_a_browsers_traceparent_through_envoy_continues_its_trace(cluster) -> None:
    """gRPC-Web carries it as a header; a WebSocket, which cannot, in the query string."""
    wav = (DATA / "en" / "jfk.wav").read_bytes()
    request = speech_pb2.RecognizeRequest(
        config=speech_pb2.RecognitionConfig(
            encoding=speech_pb2.AUDIO_ENCODING_COMPRESSED,
            language_code="en",
            translation_language_codes=["pt"],
        ),
        audio_content=wav,
    )
    web_trace, web_parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    response = httpx.post(
        f"http://{cluster.edge.address}/{GATEWAY_SERVICE}/Recognize",
        content=frame(request.SerializeToString()),
        headers={**HEADERS, "traceparent": f"00-{web_trace}-{web_parent}-01"},
        timeout=120,
    )
    assert response.status_code == 200
    everywhere = {"dragoman-gateway", "dragoman-stt", "dragoman-translate"}
    root = f"/{GATEWAY_SERVICE}/Recognize"
    spans = _wait_for_trace(cluster.collector, web_trace, everywhere, root)
    assert {s.service for s in spans} == everywhere
    [recognize] = [s for s in spans if s.span.name == root]
    assert recognize.span.parent_span_id.hex() == web_parent

    socket_trace, socket_parent = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    audio = read_wav(DATA / "en" / "jfk.wav")
    url = (
        f"ws://{cluster.edge.address}/ws/v1/recognize"
        f"?traceparent=00-{socket_trace}-{socket_parent}-01"
    )
    conversation = asyncio.run(converse(url, [config_frame(), *audio_frames(audio), END_OF_AUDIO]))
    assert conversation.finals()
    spans = _wait_for_trace(
        cluster.collector, socket_trace, {"dragoman-gateway", "dragoman-stt"}, "/ws/v1/recognize"
    )
    [bridge] = [s for s in spans if s.span.name == "/ws/v1/recognize"]
    assert bridge.span.parent_span_id.hex() == socket_parent
    assert any(s.service == "dragoman-stt" for s in spans)


def test_sigterm_mid_utterance_still_delivers_its_final(cluster) -> None:
    """SIGTERM arrives while the second sentence is being spoken: its final still comes,
    then UNAVAILABLE, and the gateway exits within its grace period."""
    audio = read_wav(DATA / "en" / "jfk.wav")
    received: list[speech_pb2.StreamingRecognizeResponse] = []
    sent_s = 0.0

    def requests():
        nonlocal sent_s
        config = config_request(audio, enable_speech_events=True)
        for request in paced([config, *audio_requests(audio)], 0.1):
            if request.HasField("audio_content"):
                sent_s += 0.1
            yield request
        while True:
            time.sleep(0.1)
            yield speech_pb2.StreamingRecognizeRequest(audio_content=b"\x00\x00" * 1600)

    error: list[grpc.RpcError] = []

    def stream() -> None:
        with grpc.insecure_channel(cluster.gateway) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            try:
                received.extend(stub.StreamingRecognize(requests(), timeout=120))
            except grpc.RpcError as caught:
                error.append(caught)

    client = threading.Thread(target=stream)
    client.start()
    deadline = time.monotonic() + 30
    while not (finals(received) and sent_s >= 4.5) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert finals(received), "the first sentence was recognized"
    first_segment = finals(received)[0].segment_id
    in_progress = [
        r.speech_event.segment_id
        for r in received
        if r.HasField("speech_event")
        and r.speech_event.type == speech_pb2.SpeechEvent.SPEECH_EVENT_TYPE_ACTIVITY_BEGIN
    ][-1]
    assert in_progress > first_segment, "SIGTERM comes while the next utterance is spoken"
    cluster.gateway_process.send_signal(signal.SIGTERM)
    signalled_at = time.monotonic()
    client.join(60)
    assert cluster.watch.wait_for("NOT_SERVING", 5)
    assert cluster.watch.statuses.index("SERVING") < len(cluster.watch.statuses) - 1

    [status] = error
    assert status.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in status.details()
    [last] = [r for r in finals(received) if r.segment_id == in_progress]
    assert last.transcript, "the utterance in progress at SIGTERM got its final result"
    assert max(r.segment_id for r in finals(received)) == in_progress, "and nothing after it"
    assert cluster.gateway_process.wait(30) == 0
    assert time.monotonic() - signalled_at < DRAIN_GRACE_S + 5
