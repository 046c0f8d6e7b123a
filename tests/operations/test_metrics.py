"""Every service's /metrics, scraped around a streamed clip: the counters match the clip."""

import grpc
import pytest

from tests.conftest import DATA
from tests.prometheus import scrape, value
from tests.streaming import audio_requests, config_request, finals, read_wav


def _ports(stack) -> dict[str, int]:
    services = stack.stack
    return {
        "gateway": services.gateway.metrics.port,
        "stt": services.stt.metrics.port,
        "translate": services.translate.metrics.port,
    }


def _scrape_all(stack) -> dict:
    return {name: scrape(port) for name, port in _ports(stack).items()}


def test_counters_match_what_was_streamed(stack) -> None:
    before = _scrape_all(stack)
    audio = read_wav(DATA / "en" / "jfk.wav")
    request = config_request(audio)
    request.streaming_config.config.translation_language_codes.append("pt")
    results = finals(
        list(stack.stub.StreamingRecognize(iter([request, *audio_requests(audio)]), timeout=120))
    )
    after = _scrape_all(stack)

    def delta(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    assert delta("gateway", "dragoman_gateway_audio_seconds_total") == pytest.approx(11.0)
    assert delta("gateway", "dragoman_gateway_streams_total", transport="grpc") == 1
    assert value(after["gateway"], "dragoman_gateway_active_streams", transport="grpc") == 0
    utterances = sum(
        delta("gateway", "dragoman_gateway_utterances_total", endpoint_reason=reason)
        for reason in ("ENDPOINT_REASON_SILENCE", "ENDPOINT_REASON_END_OF_STREAM")
    )
    assert utterances == len(results)
    assert delta("gateway", "dragoman_gateway_final_latency_seconds_count") == len(results)
    assert (
        delta("gateway", "dragoman_gateway_calls_total", method="StreamingRecognize", code="OK")
        == 1
    )
    assert delta("stt", "dragoman_stt_jobs_total", model="tiny.en", kind="final") >= len(results)
    assert delta("stt", "dragoman_stt_queue_wait_seconds_count", model="tiny.en") >= len(results)
    assert value(after["stt"], "dragoman_stt_queue_depth") == 0
    assert value(after["stt"], "dragoman_stt_model_state", model="tiny.en", state="ready") == 1
    translated = sum(1 for r in results if r.transcript)
    assert delta(
        "translate", "dragoman_translate_jobs_total", backend="bergamot", kind="en→pt"
    ) == (translated)
    assert delta("translate", "dragoman_translate_batch_size_count", backend="bergamot") == (
        translated
    )
    assert (
        value(
            after["translate"],
            "dragoman_translate_backend_state",
            backend="bergamot",
            state="ready",
        )
        == 1
    )


def test_errors_are_counted_by_status_code(stack) -> None:
    before = scrape(stack.stack.gateway.metrics.port)
    bad = config_request()
    bad.streaming_config.config.sample_rate_hertz = 1000
    with pytest.raises(grpc.RpcError) as caught:
        list(stack.stub.StreamingRecognize(iter([bad]), timeout=30))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = scrape(stack.stack.gateway.metrics.port)
    labels = {"method": "StreamingRecognize", "code": "INVALID_ARGUMENT"}
    assert value(after, "dragoman_gateway_calls_total", **labels) == (
        value(before, "dragoman_gateway_calls_total", **labels) + 1
    )
    errors = {"transport": "grpc", "code": "INVALID_ARGUMENT"}
    assert value(after, "dragoman_gateway_stream_errors_total", **errors) == (
        value(before, "dragoman_gateway_stream_errors_total", **errors) + 1
    )
