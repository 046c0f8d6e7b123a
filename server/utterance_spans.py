"""The spans of a stream's utterances: one trace per stream, one span per utterance.

A stream is one trace because that is how a client sees it: the browser's or the caller's
`traceparent` starts it, and every utterance, with its STT and translation calls in the
other services, sits under it in order. Each utterance span ends when its final result is
sent, so a long stream's utterances are exported (and searchable) while it still runs;
only the stream's own span waits for the end.

Under an utterance: `vad` covers the segmenting, from the start of speech to the endpoint;
the STT and translation calls made for it are children through the gRPC client
interceptor, because they are awaited inside `within(segment_id)`.
"""

import contextlib
from collections.abc import Iterator

from opentelemetry import context as otel_context
from opentelemetry import trace

from dragoman.api.speech.v1 import speech_pb2

PREFIX = "dragoman."


class UtteranceSpans:
    """Opens, annotates and ends the spans of one stream's utterances."""

    def __init__(self, tracer: trace.Tracer, *, session_id: str, model: str) -> None:
        self._tracer = tracer
        self._parent = otel_context.get_current()
        self._attributes = {PREFIX + "session_id": session_id, PREFIX + "model": model}
        self._utterances: dict[int, trace.Span] = {}
        self._vad: dict[int, trace.Span] = {}

    def speech_started(self, segment_id: int, offset_s: float) -> None:
        attributes = {
            **self._attributes,
            PREFIX + "segment_id": segment_id,
            PREFIX + "speech_start_s": round(offset_s, 3),
        }
        utterance = self._tracer.start_span(
            "utterance", context=self._parent, attributes=attributes
        )
        self._utterances[segment_id] = utterance
        self._vad[segment_id] = self._tracer.start_span(
            "vad", context=trace.set_span_in_context(utterance), attributes=attributes
        )

    def utterance_ended(self, segment_id: int, *, reason: str, audio_s: float) -> None:
        vad = self._vad.pop(segment_id, None)
        if vad is not None:
            vad.set_attributes({PREFIX + "endpoint_reason": reason, PREFIX + "audio_s": audio_s})
            vad.end()

    @contextlib.contextmanager
    def within(self, segment_id: int) -> Iterator[None]:
        """Makes the utterance's span current, so that calls made for it are its children."""
        span = self._utterances.get(segment_id)
        if span is None:
            yield
            return
        with trace.use_span(span, end_on_exit=False):
            yield

    def finished(self, result: speech_pb2.StreamingRecognitionResult, audio_s: float) -> None:
        """Annotates the utterance with its final result and ends it."""
        span = self._utterances.pop(result.segment_id, None)
        if span is None:
            return
        latency = result.processing_latency
        span.set_attributes(
            {
                PREFIX + "audio_s": round(audio_s, 3),
                PREFIX + "language": result.language_code,
                PREFIX + "revision": result.revision,
                PREFIX + "latency_s": round(latency.seconds + latency.nanos / 1e9, 4),
                PREFIX + "endpoint_reason": speech_pb2.EndpointReason.Name(result.endpoint_reason),
                PREFIX + "suppression_reason": speech_pb2.SuppressionReason.Name(
                    result.suppression.reason
                ),
                PREFIX + "translations": len(result.translations),
            }
        )
        span.end()

    def close(self) -> None:
        """Ends what the stream leaves open (it failed or was cancelled mid-utterance)."""
        for span in [*self._vad.values(), *self._utterances.values()]:
            span.set_attribute(PREFIX + "abandoned", True)
            span.end()
        self._vad.clear()
        self._utterances.clear()
