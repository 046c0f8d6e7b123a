"""Draining a gateway in-process: an utterance that outlasts the grace period is cut, its
final result still sent, and new streams are refused."""

import grpc
import pytest

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from tests.conftest import DATA, own_gateway
from tests.streaming import audio_requests, config_request, finals, paced, read_wav

BEGIN = speech_pb2.SpeechEvent.SPEECH_EVENT_TYPE_ACTIVITY_BEGIN


@pytest.fixture(params=[True, False], ids=["resumable", "not-resumable"])
def gateway(stack, request):
    """Resumable sessions are in the registry; the others must be drained all the same."""
    with own_gateway(stack, **({} if request.param else {"resume_grace_s": 0.0})) as app:
        yield app


def test_an_utterance_longer_than_the_grace_is_cut_and_finalized(stack, gateway) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    requests = paced(
        [config_request(audio, enable_speech_events=True), *audio_requests(audio)], 0.1
    )
    channel = grpc.insecure_channel(gateway.address)
    call = speech_pb2_grpc.SpeechServiceStub(channel).StreamingRecognize(requests, timeout=60)
    received = []
    for response in call:
        received.append(response)
        if response.HasField("speech_event") and response.speech_event.type == BEGIN:
            break
    segment = received[-1].speech_event.segment_id

    async def drain() -> None:
        gateway.sessions.drain(grace_s=0.4)

    stack.loop.run(drain())
    with pytest.raises(grpc.RpcError) as caught:
        received.extend(call)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, "the drain did not end the stream"
    [cut] = finals(received)
    assert cut.segment_id == segment
    assert cut.endpoint_reason == speech_pb2.ENDPOINT_REASON_SHUTDOWN
    assert cut.transcript

    with pytest.raises(grpc.RpcError) as refused:
        list(
            speech_pb2_grpc.SpeechServiceStub(channel).StreamingRecognize(
                iter([config_request(audio)]), timeout=30
            )
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry on another replica" in refused.value.details()
    channel.close()
