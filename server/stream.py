"""One recognition stream: requests in, speech events and interim and final results out.

Two tasks share a stream. The reader takes the client's messages: audio goes to the audio
source (decoder, VAD, segmenter), controls change languages or end the utterance, and the
pace and idle limits are kept. The pipeline makes the STT calls, one at a time, as its
policy decides (`server.policy`), and hands its results back here, where they become
responses: interims as they come, finals in segment order with their translations.
"""

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from dragoman.api.speech.v1 import speech_pb2
from dragoman.api.stt.v1 import stt_pb2
from dragoman.errors import InvalidRequestError, StatusError
from dragoman.gateway import results
from dragoman.gateway.audio import SAMPLE_RATE_HZ, AudioFormatError
from dragoman.gateway.audio_source import AudioSource
from dragoman.gateway.hallucination import HallucinationOptions
from dragoman.gateway.interims import InterimState
from dragoman.gateway.limits import AudioPace
from dragoman.gateway.metrics import GatewayMetrics
from dragoman.gateway.pipeline import Languages, PendingFinal, RecognitionPipeline
from dragoman.gateway.policy import PolicyTuning
from dragoman.gateway.request_options import StreamOptions, parse_languages
from dragoman.gateway.room_publisher import RoomPublisher
from dragoman.gateway.segmenter import (
    STREAM_START,
    EndReason,
    Event,
    SpeechEnded,
    SpeechStarted,
    SpeechState,
    StreamPosition,
    UtteranceEnded,
)
from dragoman.gateway.settings import FinalSettings, InterimSettings, StreamLimits
from dragoman.gateway.stt_client import SttClient
from dragoman.gateway.transcriber import Call, Purpose, SttTranscriber, Transcript
from dragoman.gateway.translation import Translator
from dragoman.gateway.utterance_spans import UtteranceSpans
from dragoman.gateway.vad import SileroModel

logger = logging.getLogger(__name__)

Request = speech_pb2.StreamingRecognizeRequest
Response = speech_pb2.StreamingRecognizeResponse
EventType = speech_pb2.SpeechEvent.SpeechEventType


@dataclass(frozen=True)
class StreamTuning:
    """Per-gateway knobs that are not part of a client's config: the settings' groups."""

    limits: StreamLimits
    interims: InterimSettings
    finals: FinalSettings
    hallucination: HallucinationOptions


class _EndOfStream:
    pass


async def _whisper_translates_finals_only() -> str:
    raise InvalidRequestError(
        "Whisper translates final results only: it needs the utterance's whole audio"
    )


class RecognitionStream:
    """Runs the streaming pipeline for one client stream."""

    def __init__(
        self,
        options: StreamOptions,
        model: stt_pb2.ModelInfo,
        *,
        session_id: str,
        stt: SttClient,
        vad_model: SileroModel,
        tuning: StreamTuning,
        translator: Translator,
        spans: UtteranceSpans,
        metrics: GatewayMetrics,
        live: bool = True,
        room: RoomPublisher | None = None,
        start: StreamPosition = STREAM_START,
    ) -> None:
        """`live` streams are held to the pace and idle limits; Recognize's whole file is
        not. Results are also handed to `room`, if any, with the means to translate them.
        The audio begins at `start` (not 0 for a session resumed on another gateway)."""
        self._options = options
        self._spans = spans
        self._metrics = metrics
        self._model = model
        self._session_id = session_id
        self._stt = stt
        self._tuning = tuning
        self._translator = translator
        self._room = room
        self._languages = Languages(options.language_code, options.translation_targets)
        self._utterance_languages = self._languages
        try:
            self._source = AudioSource(
                options, vad_model, self._handle, on_audio=metrics.audio_seconds.inc, start=start
            )
        except AudioFormatError as error:
            raise InvalidRequestError(str(error)) from None
        self._transcriber = SttTranscriber(
            stt,
            model=model.name,
            session_id=session_id,
            spans=spans,
            hallucination=tuning.hallucination,
            final_persist_s=tuning.finals.final_persist_s,
        )
        self._pipeline = RecognitionPipeline(
            self._source,
            self._transcriber,
            self,
            PolicyTuning(
                interim_interval_s=tuning.interims.interim_interval_s,
                first_interim_s=tuning.interims.first_interim_s,
                interim_duty_cycle=tuning.interims.interim_duty_cycle,
                max_utterance_s=options.segmenter.max_utterance_s,
            ),
            interim_results=options.interim_results,
            word_time_offsets=options.word_time_offsets,
            prompt_previous=tuning.finals.condition_on_previous,
        )
        self._interims = InterimState()
        self._speech_start_s = 0.0
        self._latest_interim: speech_pb2.StreamingRecognitionResult | None = None
        self._out: asyncio.Queue[Response | BaseException | _EndOfStream] = asyncio.Queue()
        self._undelivered: dict[int, StreamPosition] = {}
        """Finals queued in `_out`, by segment id: where their utterances began."""
        self._input_done = False
        self._reader: asyncio.Task[None] | None = None
        self._interim_translation: asyncio.Task[None] | None = None
        self._drain_cut: asyncio.TimerHandle | None = None
        self._live = live
        self._pace = AudioPace(tuning.limits, started_at=time.monotonic(), live=live)
        self._held_until = 0.0
        """Until when the reader holds a too fast sender back (see `_keep_pace`)."""
        self.ended_by: StatusError | None = None
        """Why the server ended the stream after its last final (draining, a limit)."""

    @property
    def model_name(self) -> str:
        return self._model.name

    @property
    def audio_seconds(self) -> float:
        return self._source.audio_seconds

    @property
    def room(self) -> RoomPublisher | None:
        return self._room

    @property
    def languages(self) -> Languages:
        """The languages now in force (the config's, or the last update's)."""
        return self._languages

    @property
    def resume_point(self) -> StreamPosition:
        """Where a pipeline rebuilt from resent audio would start: every utterance that
        ended before it has had its final handed out of `run`, and its segment id is that
        of the first utterance whose final has not."""
        pending = [*self._undelivered.values(), self._pipeline.earliest_unfinished]
        waiting = [position for position in pending if position is not None]
        if waiting:
            return min(waiting, key=lambda position: position.segment_id)
        return self._source.kept_since

    async def run(self, requests: AsyncIterator[Request]) -> AsyncIterator[Response]:
        """Yields responses until the input ends and every final is out, or raises."""
        self._reader = self._task(self._guard(self._read(requests)), "reader")
        tasks = [self._reader, self._task(self._guard(self._transcribe()), "pipeline")]
        if self._live:
            tasks.append(self._task(self._watch_idle(), "idle watch"))
        try:
            while True:
                item = await self._out.get()
                if isinstance(item, _EndOfStream):
                    return
                if isinstance(item, BaseException):
                    raise item
                if item.result.is_final:
                    del self._undelivered[item.result.segment_id]
                yield item
        finally:
            if self._interim_translation is not None:
                tasks.append(self._interim_translation)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._drain_cut is not None:
                self._drain_cut.cancel()
            self._source.close()
            self._spans.close()

    def _task(self, work: Coroutine[Any, Any, None], role: str) -> asyncio.Task[None]:
        """A task of this stream, named after its session so that a task dump shows whose
        it is."""
        return asyncio.create_task(work, name=f"session {self._session_id} {role}")

    def drain(self, cut_after_s: float, reason: StatusError) -> None:
        """Ends the stream at its next pause, for a server that is shutting down.

        The utterance in progress goes on until it ends by itself, or for `cut_after_s` at
        most; then no more audio is read, its final result (and any still pending) is sent,
        and the response stream ends with `ended_by` set to `reason`.
        """
        if self._input_done or self.ended_by is not None:
            return
        self.ended_by = reason
        if self._source.state is SpeechState.INACTIVE:
            self._stop_reading(None)
        else:
            self._drain_cut = asyncio.get_running_loop().call_later(
                cut_after_s, self._stop_reading, EndReason.SHUTDOWN
            )

    def _end_now(self, reason: StatusError) -> None:
        """Ends the stream at once for a broken limit; what was said still gets its final."""
        if self._input_done:
            return
        self.ended_by = reason
        self._stop_reading(EndReason.END_OF_STREAM)

    async def _watch_idle(self) -> None:
        idle_timeout_s = self._tuning.limits.idle_timeout_s
        while not self._input_done:
            silent_s = time.monotonic() - max(self._source.last_audio_at, self._held_until)
            if silent_s >= idle_timeout_s:
                self._end_now(self._pace.idle_error())
                return
            await asyncio.sleep(idle_timeout_s - silent_s)

    def _stop_reading(self, cut: EndReason | None) -> None:
        """Stops the reader between messages and flushes what it was building."""
        if self._input_done:
            return
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        if cut is not None:
            self._source.finalize(cut)
        self._input_done = True
        self._pipeline.input_ended()

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        """Hands a task's failure to the response stream, which raises it to the client."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except AudioFormatError as error:
            self._out.put_nowait(InvalidRequestError(str(error)))
        except Exception as error:
            self._out.put_nowait(error)

    async def _transcribe(self) -> None:
        await self._pipeline.run()
        self._out.put_nowait(_EndOfStream())

    async def _read(self, requests: AsyncIterator[Request]) -> None:
        async for request in requests:
            self._on_request(request)
            if request.WhichOneof("streaming_request") == "control":
                await self._on_control(request.control)
            if self._input_done:
                return
            await self._keep_pace()
        self._source.end()
        self._input_done = True
        self._pipeline.input_ended()

    async def _keep_pace(self) -> None:
        """Reads no further until the audio read so far fits the pace: the sender is held
        back by the transport's flow control meanwhile, and is not idle."""
        hold_s = self._pace.hold_s(self.audio_seconds, time.monotonic())
        if hold_s > 0:
            self._metrics.throttled_seconds.inc(hold_s)
            self._held_until = time.monotonic() + hold_s
            await asyncio.sleep(hold_s)

    def _on_request(self, request: Request) -> None:
        kind = request.WhichOneof("streaming_request")
        if kind == "audio_content":
            self._on_audio(request.audio_content)
        elif kind == "streaming_config":
            raise InvalidRequestError(
                "streaming_config may only be sent in the first message of a stream"
            )
        elif kind != "control":
            raise InvalidRequestError("empty message: set audio_content or control")

    async def _on_control(self, control: speech_pb2.StreamingControl) -> None:
        action = control.WhichOneof("action")
        if action == "finalize":
            self._source.finalize(EndReason.FINALIZE)
        elif action == "update_languages":
            update = control.update_languages
            spoken, targets = parse_languages(
                update.language_code, update.translation_language_codes
            )
            await self._stt.resolve(self._model.name, spoken)
            await self._translator.check(spoken, targets, self._model)
            self._languages = Languages(spoken, targets)
            if self._source.state is SpeechState.INACTIVE:
                self._utterance_languages = self._languages
            logger.info("languages changed to %s → %s", spoken or "auto", ", ".join(targets))
        else:
            raise InvalidRequestError("empty control message: set finalize or update_languages")

    @property
    def _multilingual(self) -> bool:
        return not self._model.english_only

    def _on_audio(self, chunk: bytes) -> None:
        if len(chunk) > self._tuning.limits.max_chunk_bytes:
            raise InvalidRequestError(
                f"audio chunk of {len(chunk)} bytes exceeds the limit of "
                f"{self._tuning.limits.max_chunk_bytes} bytes: send 20-100 ms per message"
            )
        self._source.push(chunk)
        self._pipeline.audio_arrived()
        broken = self._pace.check(self.audio_seconds)
        if broken is not None:
            self._end_now(broken)

    def _handle(self, events: list[Event]) -> None:
        """Speech ends for clients at the endpoint: pauses inside an utterance are not events."""
        for event in events:
            if isinstance(event, SpeechStarted):
                self._spans.speech_started(event.segment_id, event.speech_start_s)
                self._utterance_languages = self._languages
                self._speech_event(
                    EventType.SPEECH_EVENT_TYPE_ACTIVITY_BEGIN,
                    event.speech_start_s,
                    event.segment_id,
                )
                self._speech_start_s = event.speech_start_s
                self._pipeline.speech_started(event, self._utterance_languages)
            elif isinstance(event, SpeechEnded):
                self._pipeline.speech_paused(event)
            elif isinstance(event, UtteranceEnded):
                self._speech_event(
                    EventType.SPEECH_EVENT_TYPE_ACTIVITY_END, event.speech_end_s, event.segment_id
                )
                self._end_utterance(event)

    def _end_utterance(self, utterance: UtteranceEnded) -> None:
        self._spans.utterance_ended(
            utterance.segment_id,
            reason=utterance.reason.name,
            audio_s=len(utterance.audio) / SAMPLE_RATE_HZ,
        )
        self._pipeline.utterance_ended(utterance, self._source.last_audio_at)
        if self.ended_by is not None:
            self._stop_reading(None)
        if self._options.single_utterance:
            self._speech_event(
                EventType.SPEECH_EVENT_TYPE_END_OF_SINGLE_UTTERANCE,
                utterance.speech_end_s,
                utterance.segment_id,
                always=True,
            )
            self._stop_reading(None)

    def _speech_event(
        self, kind: int, offset_s: float, segment_id: int, *, always: bool = False
    ) -> None:
        if self._options.speech_events or always:
            self._out.put_nowait(results.speech_event(kind, offset_s, segment_id))

    # The pipeline's sink.

    def interim(self, segment_id: int, transcript: Transcript, audio_at: float) -> bool:
        if not self._interims.is_open(segment_id):
            return False
        interim = self._interims.offer(
            segment_id,
            transcript,
            start_s=self._speech_start_s,
            latency_s=time.monotonic() - audio_at,
        )
        if transcript.suppression is not None:
            logger.debug("interim suppressed: %s", transcript.suppression.detail)
        if interim is None:
            return True
        result = results.interim(interim)
        self._latest_interim = result
        self._metrics.interim_latency.observe(interim.latency_s)
        self._out.put_nowait(Response(result=result))
        if self._room is not None:
            self._room.offer(
                result,
                functools.partial(
                    self._translator.translate,
                    result.transcript,
                    self._utterance_languages.spoken or result.language_code,
                    multilingual=self._multilingual,
                    whisper=_whisper_translates_finals_only,
                    session_id=self._session_id,
                    segment_id=segment_id,
                ),
            )
        if self._options.translate_interim and self._utterance_languages.targets:
            translating = self._interim_translation
            if translating is None or translating.done():
                self._interim_translation = self._task(
                    self._translate_interim(), "interim translation"
                )
        return True

    def discarded(self, model_s: float) -> None:
        self._metrics.stt_discarded_seconds.inc(model_s)

    async def _translate_interim(self) -> None:
        """Translates the latest interim text, one translation in flight per stream (so one
        per target); a text superseded while it was translated is translated again, and
        nothing is sent once the segment's final is out."""
        while True:
            latest = self._interims.latest
            if latest is None:
                return
            text, segment_id = latest.transcript.text, latest.segment_id
            with self._spans.within(segment_id):
                translations = await self._translator.translate(
                    text,
                    self._utterance_languages.spoken or latest.transcript.language_code,
                    self._utterance_languages.targets,
                    multilingual=self._multilingual,
                    whisper=_whisper_translates_finals_only,
                    session_id=self._session_id,
                    segment_id=segment_id,
                )
            now = self._interims.latest
            if now is None or now.segment_id != segment_id or self._latest_interim is None:
                return
            if now.transcript.text == text:
                break
        revision = self._interims.revise(segment_id)
        translated = results.translated_interim(self._latest_interim, revision, translations)
        self._out.put_nowait(Response(result=translated))

    async def final(self, pending: PendingFinal, transcript: Transcript) -> None:
        utterance = pending.utterance
        languages = pending.languages
        spoken = languages.spoken or transcript.language_code

        def whisper_to_english() -> Coroutine[Any, Any, str]:
            return self._transcriber.to_english(
                Call(
                    segment_id=utterance.segment_id,
                    audio=utterance.audio,
                    audio_start_s=utterance.audio_start_s,
                    purpose=Purpose.FINAL,
                    language=transcript.language_code,
                )
            )

        translate = functools.partial(
            self._translator.translate,
            transcript.text,
            spoken,
            multilingual=self._multilingual,
            whisper=whisper_to_english,
            session_id=self._session_id,
            segment_id=utterance.segment_id,
        )
        with self._spans.within(utterance.segment_id):
            translations = await translate(languages.targets)
        latency_s = time.monotonic() - pending.detected_at
        result = results.final(
            utterance,
            transcript,
            revision=self._interims.finish(utterance.segment_id),
            latency_s=latency_s,
            translations=translations,
            with_words=self._options.word_time_offsets,
        )
        self._observe_final(result, len(utterance.audio) / SAMPLE_RATE_HZ)
        self._undelivered[utterance.segment_id] = utterance.start
        logger.info(
            "final: %.2f s of audio, model %.3f s, latency %.3f s%s",
            len(utterance.audio) / SAMPLE_RATE_HZ,
            transcript.model_s,
            latency_s,
            f", suppressed ({transcript.suppression.detail})" if transcript.suppression else "",
        )
        self._out.put_nowait(Response(result=result))
        if self._room is not None:
            self._room.offer(result, translate)

    def _observe_final(self, result: speech_pb2.StreamingRecognitionResult, audio_s: float) -> None:
        latency = result.processing_latency
        self._metrics.final_latency.observe(latency.seconds + latency.nanos / 1e9)
        self._metrics.utterances.labels(
            speech_pb2.EndpointReason.Name(result.endpoint_reason)
        ).inc()
        if result.HasField("suppression"):
            self._metrics.suppressed.labels(
                speech_pb2.SuppressionReason.Name(result.suppression.reason)
            ).inc()
        self._spans.finished(result, audio_s)
