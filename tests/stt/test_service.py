import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from dragoman.api.stt.v1 import stt_pb2, stt_pb2_grpc
from dragoman.durations import seconds
from dragoman.interfaces import STT_SERVICE_NAME
from dragoman.logs import segment_id_var, session_id_var
from dragoman.serving import MiB
from dragoman.stt.app import SttApp
from dragoman.stt.settings import SttSettings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ONE_SECOND = b"\x00\x01" * 16000


def _settings(model_cache_dir: Path, **overrides: object) -> SttSettings:
    return SttSettings(
        port=0, metrics_port=0, model_cache_dir=model_cache_dir, drain_grace_s=1.0, **overrides
    )


@dataclass
class Replica:
    app: SttApp
    channel: grpc.Channel

    @property
    def stub(self) -> stt_pb2_grpc.SttServiceStub:
        return stt_pb2_grpc.SttServiceStub(self.channel)

    def health(self) -> int:
        request = health_pb2.HealthCheckRequest(service=STT_SERVICE_NAME)
        return health_pb2_grpc.HealthStub(self.channel).Check(request).status


@pytest.fixture(scope="module")
def replica(loop_thread, model_cache_dir: Path) -> Iterator[Replica]:
    app = SttApp(_settings(model_cache_dir, max_queue=2))
    loop_thread.run(app.start())
    loop_thread.run(app.wait_ready())
    with grpc.insecure_channel(app.address) as channel:
        yield Replica(app, channel)
    loop_thread.run(app.stop())


def test_health_is_not_serving_until_the_model_loads(loop_thread, model_cache_dir: Path) -> None:
    app = SttApp(_settings(model_cache_dir))
    port = loop_thread.run(app.start())
    try:
        with grpc.insecure_channel(app.address) as channel:
            replica = Replica(app, channel)
            before = replica.health()
            with pytest.raises(grpc.RpcError) as loading:
                replica.stub.Transcribe(stt_pb2.TranscribeRequest(audio_pcm16=ONE_SECOND))
            loop_thread.run(app.wait_ready())
            after = replica.health()
    finally:
        loop_thread.run(app.stop())

    assert port > 0
    assert app.address == f"127.0.0.1:{port}"
    assert (before, after) == (NOT_SERVING, SERVING)
    assert loading.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "still loading" in loading.value.details()


def test_model_that_fails_to_load_keeps_the_replica_out_of_service(
    loop_thread, tmp_path: Path
) -> None:
    (tmp_path / "model.bin").write_bytes(b"not a model")
    app = SttApp(_settings(tmp_path, model=str(tmp_path)))
    loop_thread.run(app.start())
    try:
        with pytest.raises(Exception, match="cannot load model"):
            loop_thread.run(app.wait_ready())
        with grpc.insecure_channel(app.address) as channel:
            replica = Replica(app, channel)
            status = replica.health()
            with pytest.raises(grpc.RpcError) as caught:
                replica.stub.Transcribe(stt_pb2.TranscribeRequest(audio_pcm16=ONE_SECOND))
    finally:
        loop_thread.run(app.stop())

    assert status == NOT_SERVING
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "failed to load" in caught.value.details()


def test_reflection_lists_the_service(replica: Replica) -> None:
    services = ProtoReflectionDescriptorDatabase(replica.channel).get_services()

    assert STT_SERVICE_NAME == "dragoman.stt.v1.SttService"
    assert STT_SERVICE_NAME in services


def test_transcribes_jfk_over_loopback(
    replica: Replica,
    jfk_pcm16: bytes,
    jfk_reference: str,
    word_error_rate: Callable[[str, str], float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dragoman.jobs")
    caplog.handler.addFilter(_record_ids)

    response = replica.stub.Transcribe(
        stt_pb2.TranscribeRequest(
            audio_pcm16=jfk_pcm16, session_id="session-7", segment_id=3, word_timestamps=True
        )
    )

    text = "".join(segment.text for segment in response.segments)
    assert word_error_rate(jfk_reference, text) < 0.2
    first = response.segments[0].words[0]
    assert first.word.strip() == "And"
    assert (response.language_code, response.language_probability) == ("en", 1)
    assert response.model == "tiny.en"
    assert seconds(response.audio_duration) == pytest.approx(11.0)
    assert 0 <= seconds(first.start_offset) < seconds(first.end_offset) <= 11.0
    assert seconds(response.inference_duration) > 0
    assert response.HasField("queue_duration")
    [line] = [r for r in caplog.records if r.getMessage().startswith("job done")]
    assert line.job["audio_s"] == 11.0
    assert line.job["worker"] == "tiny.en"
    assert line.job["kind"] == "final"
    assert line.job["run_s"] > 0
    assert line.job["total_s"] == pytest.approx(line.job["queue_s"] + line.job["run_s"], abs=1e-3)
    assert (line.session_id, line.segment_id) == ("session-7", 3)


def _record_ids(record: logging.LogRecord) -> bool:
    record.session_id = session_id_var.get()
    record.segment_id = segment_id_var.get()
    return True


def test_lists_the_loaded_models(replica: Replica) -> None:
    response = replica.stub.ListModels(stt_pb2.ListModelsRequest())

    [model] = response.models
    assert (model.name, model.english_only, model.device, model.is_default) == (
        "tiny.en",
        True,
        "cpu",
        True,
    )
    assert model.compute_type.startswith("int8")
    assert list(model.language_codes) == ["en"]


@pytest.mark.parametrize(
    ("request_fields", "code", "message"),
    [
        ({"audio_pcm16": b""}, grpc.StatusCode.INVALID_ARGUMENT, "audio_pcm16 is empty"),
        ({"audio_pcm16": b"\x00" * 3}, grpc.StatusCode.INVALID_ARGUMENT, "odd number of bytes"),
        ({"audio_pcm16": ONE_SECOND * 31}, grpc.StatusCode.INVALID_ARGUMENT, "at most 30 s"),
        (
            {"audio_pcm16": b"\x00" * 5 * MiB},
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "larger than max",
        ),
        (
            {"audio_pcm16": ONE_SECOND, "model": "large"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "not served here; expected one of: tiny.en",
        ),
        (
            {"audio_pcm16": ONE_SECOND, "language_code": "es"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "does not know language 'es'; expected one of: en",
        ),
        (
            {"audio_pcm16": ONE_SECOND, "task": stt_pb2.TASK_TRANSLATE},
            grpc.StatusCode.INVALID_ARGUMENT,
            "English-only and cannot translate",
        ),
        (
            {"audio_pcm16": ONE_SECOND, "task": 9},
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown task 9; expected one of: TASK_UNSPECIFIED, TASK_TRANSCRIBE, TASK_TRANSLATE",
        ),
        (
            {"audio_pcm16": ONE_SECOND, "priority": 9},
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown priority 9; expected one of: PRIORITY_UNSPECIFIED",
        ),
    ],
)
def test_bad_requests_get_their_code_and_a_helpful_message(
    replica: Replica, request_fields: dict, code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        replica.stub.Transcribe(stt_pb2.TranscribeRequest(**request_fields))

    assert caught.value.code() == code
    assert message in caught.value.details()
    assert replica.health() == SERVING


def test_full_queue_refuses_interims(replica: Replica, jfk_pcm16: bytes) -> None:
    request = stt_pb2.TranscribeRequest(audio_pcm16=jfk_pcm16, priority=stt_pb2.PRIORITY_INTERIM)

    calls = [replica.stub.Transcribe.future(request) for _ in range(6)]

    codes = [call.code() for call in calls]
    refused = [call.details() for call in calls if call.code() != grpc.StatusCode.OK]
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert all("queue is full" in details for details in refused)


def test_keeps_serving_after_refusals(replica: Replica) -> None:
    response = replica.stub.Transcribe(
        stt_pb2.TranscribeRequest(audio_pcm16=ONE_SECOND, priority=stt_pb2.PRIORITY_INTERIM)
    )

    assert response.model == "tiny.en"
    assert replica.health() == SERVING
