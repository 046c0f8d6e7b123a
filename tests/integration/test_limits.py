"""Admission and the limits of a live stream, each with its own status, and none of them
losing the final result of what was already said."""

import threading

import grpc
import numpy as np
import pytest

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.clients.audio_file import PcmAudio
from dragoman.clients.wer import normalize
from tests.conftest import DATA, own_gateway
from tests.streaming import audio_requests, config_request, finals, paced, read_wav, samples


def _stub(app) -> tuple[grpc.Channel, speech_pb2_grpc.SpeechServiceStub]:
    channel = grpc.insecure_channel(app.address)
    return channel, speech_pb2_grpc.SpeechServiceStub(channel)


def _collect(call) -> tuple[list, grpc.RpcError | None]:
    received = []
    try:
        received.extend(call)
    except grpc.RpcError as error:
        return received, error
    return received, None


def test_streams_past_the_maximum_are_refused_with_when_to_retry(stack) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    with own_gateway(stack, max_streams=1) as app:
        channel, stub = _stub(app)
        first = stub.StreamingRecognize(
            paced([config_request(audio), *audio_requests(audio)], 0.1), timeout=60
        )
        assert next(first).HasField("session")
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.StreamingRecognize(iter([config_request(audio)]), timeout=30))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "maximum of 1 streams; retry in a few seconds" in refused.value.details()
        first.cancel()
        channel.close()


def test_a_stream_past_its_maximum_length_gets_out_of_range_after_its_final(stack) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    with own_gateway(stack, max_stream_s=4.0) as app:
        channel, stub = _stub(app)
        received, error = _collect(
            stub.StreamingRecognize(
                iter([config_request(audio), *audio_requests(audio)]), timeout=60
            )
        )
        channel.close()
    assert error is not None
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "maximum length of 4 s of audio" in error.details()
    results = finals(received)
    assert results, "what was said before the limit got its final result"
    assert all(r.end_offset.seconds <= 4 for r in results)


def test_a_silent_sender_gets_out_of_range_after_its_utterance_is_finalized(stack) -> None:
    """The sender holds its stream open, silent, until the call has ended: only the idle
    limit can end it before the call's deadline (DEADLINE_EXCEEDED), so the status alone
    proves the limit acted, on a machine of any speed."""
    speech = samples(read_wav(DATA / "en" / "jfk.wav"))[: int(16000 * 2.2)]
    audio = PcmAudio(speech.tobytes(), 16000, 1)
    call_ended = threading.Event()

    def requests():
        yield config_request(audio)
        yield from audio_requests(audio)
        call_ended.wait()

    with own_gateway(stack, idle_timeout_s=1.5) as app:
        channel, stub = _stub(app)
        try:
            received, error = _collect(stub.StreamingRecognize(requests(), timeout=60))
        finally:
            call_ended.set()
            channel.close()
    assert error is not None, f"a silent stream open for good ended OK: {received}"
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE, (
        f"expected the idle limit's OUT_OF_RANGE, got {error.code().name}: {error.details()}"
    )
    assert "no audio arrived for 1.5 s" in error.details(), error.details()
    results = finals(received)
    assert len(results) == 1, f"expected the one utterance's final before the error: {results}"
    assert "fellow" in results[0].transcript.lower(), results[0].transcript


def test_audio_much_faster_than_real_time_is_held_back_not_refused(stack) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    with own_gateway(stack, max_speedup=2.0, speedup_burst_s=3.0) as app:
        channel, stub = _stub(app)
        received, error = _collect(
            stub.StreamingRecognize(
                iter([config_request(audio), *audio_requests(audio)]), timeout=60
            )
        )
        channel.close()
        throttled_s = app.metrics.registry.get_sample_value(
            "dragoman_gateway_throttled_seconds_total"
        )
    assert error is None, "a fast sender is slowed down, not refused"
    assert "ask not what your country" in normalize(
        " ".join(f.transcript for f in finals(received))
    )
    assert throttled_s is not None
    assert throttled_s > 0, "the gateway held the sender back"


def test_recognize_of_a_whole_file_is_not_held_to_the_live_pace(stack) -> None:
    wav = (DATA / "en" / "jfk.wav").read_bytes()
    request = speech_pb2.RecognizeRequest(
        config=speech_pb2.RecognitionConfig(
            encoding=speech_pb2.AUDIO_ENCODING_COMPRESSED, language_code="en"
        ),
        audio_content=wav,
    )
    with own_gateway(stack, max_speedup=1.0, speedup_burst_s=0.0) as app:
        channel, stub = _stub(app)
        response = stub.Recognize(request, timeout=60)
        channel.close()
    assert response.results
    assert np.isclose(response.total_billed_duration.seconds, 11, atol=1)
