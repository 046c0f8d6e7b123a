"""The one place that turns a stream's results into `speech_pb2` messages."""

from collections.abc import Sequence

from dragoman.api.speech.v1 import speech_pb2
from dragoman.durations import duration
from dragoman.gateway.interims import Interim
from dragoman.gateway.segmenter import EndReason, UtteranceEnded
from dragoman.gateway.transcriber import Transcript

Response = speech_pb2.StreamingRecognizeResponse
EventType = speech_pb2.SpeechEvent.SpeechEventType

END_REASONS = {
    EndReason.SILENCE: speech_pb2.ENDPOINT_REASON_SILENCE,
    EndReason.MAX_DURATION: speech_pb2.ENDPOINT_REASON_MAX_DURATION,
    EndReason.FINALIZE: speech_pb2.ENDPOINT_REASON_FINALIZE,
    EndReason.END_OF_STREAM: speech_pb2.ENDPOINT_REASON_END_OF_STREAM,
    EndReason.SHUTDOWN: speech_pb2.ENDPOINT_REASON_SHUTDOWN,
}


def speech_event(kind: int, offset_s: float, segment_id: int) -> Response:
    event = speech_pb2.SpeechEvent(type=kind, offset=duration(offset_s), segment_id=segment_id)
    return Response(speech_event=event)


def interim(result: Interim) -> speech_pb2.StreamingRecognitionResult:
    transcript = result.transcript
    return speech_pb2.StreamingRecognitionResult(
        segment_id=result.segment_id,
        revision=result.revision,
        is_final=False,
        stability=result.stability,
        transcript=transcript.text,
        confidence=transcript.confidence,
        start_offset=duration(result.start_s),
        end_offset=duration(transcript.audio_end_s),
        language_code=transcript.language_code,
        language_probability=transcript.language_probability,
        processing_latency=duration(result.latency_s),
    )


def translated_interim(
    latest: speech_pb2.StreamingRecognitionResult,
    revision: int,
    translations: Sequence[speech_pb2.Translation],
) -> speech_pb2.StreamingRecognitionResult:
    """The latest interim again, with its translations, as the segment's next revision."""
    result = speech_pb2.StreamingRecognitionResult()
    result.CopyFrom(latest)
    result.revision = revision
    result.translations.extend(translations)
    return result


def final(
    utterance: UtteranceEnded,
    transcript: Transcript,
    *,
    revision: int,
    latency_s: float,
    translations: Sequence[speech_pb2.Translation],
    with_words: bool,
) -> speech_pb2.StreamingRecognitionResult:
    """`with_words`: the client asked for word time offsets."""
    return speech_pb2.StreamingRecognitionResult(
        segment_id=utterance.segment_id,
        revision=revision,
        is_final=True,
        stability=1.0,
        transcript=transcript.text,
        confidence=transcript.confidence,
        words=[
            speech_pb2.WordInfo(
                word=word.word.strip(),
                start_offset=duration(word.start_s),
                end_offset=duration(word.end_s),
                confidence=word.probability,
            )
            for word in (transcript.words if with_words else ())
        ],
        start_offset=duration(utterance.speech_start_s),
        end_offset=duration(utterance.speech_end_s),
        language_code=transcript.language_code,
        language_probability=transcript.language_probability,
        processing_latency=duration(latency_s),
        suppression=transcript.suppression,
        endpoint_reason=END_REASONS[utterance.reason],
        translations=translations,
    )
