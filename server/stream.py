"""One recognition stream: audio in, speech events and interim and final results out.

Two tasks share a stream. The reader decodes audio, runs the VAD and the segmenter, and
queues each ended utterance for its final result. The transcriber keeps at most one STT
request in flight: a queued final always goes first; otherwise, while someone speaks, it
re-transcribes the growing utterance for an interim result. An interim still running
when speech stops is cancelled, because the final supersedes it. Finals leave in
segment order, and a segment's final precedes any result of the next segment.

A final is transcribed speculatively as soon as its audio is known (speech stopped and
the short trailing silence it keeps has arrived), while the rest of the endpoint silence
is still being waited out: Whisper's cost does not depend on how short the utterance is
(its encoder always sees 30 s), so waiting for the endpoint before starting would add a
whole transcription to every final's latency. The speculation is used only if the
utterance ends with exactly the audio it transcribed; if speech resumes, it is dropped.
"""

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np

from dragoman.logs import segment_id_var
from dragoman.speech.v1 import speech_pb2
from dragoman.stt.v1 import stt_pb2
from server.audio import SAMPLE_RATE_HZ, AudioFormatError, make_decoder
from server.config import StreamOptions, parse_languages
from server.durations import duration
from server.errors import GatewayError, InvalidRequestError, OverloadedError
from server.hallucination import HallucinationOptions, screen
from server.limits import AudioPace, StreamLimits
from server.metrics import GatewayMetrics
from server.segmenter import (
    TRAILING_SILENCE_S,
    EndReason,
    Event,
    Segmenter,
    SpeechEnded,
    SpeechStarted,
    SpeechState,
    UtteranceEnded,
)
from server.stt_client import SttClient, pcm16
from server.translation import Translator
from server.utterance_spans import UtteranceSpans
from server.vad import DualVad, SileroModel

logger = logging.getLogger(__name__)

Request = speech_pb2.StreamingRecognizeRequest
Response = speech_pb2.StreamingRecognizeResponse
EventType = speech_pb2.SpeechEvent.SpeechEventType

PROMPT_CHARS = 200
"""How much of the previous final transcript conditions the next one."""

_END_REASONS = {
    EndReason.SILENCE: speech_pb2.ENDPOINT_REASON_SILENCE,
    EndReason.MAX_DURATION: speech_pb2.ENDPOINT_REASON_MAX_DURATION,
    EndReason.FINALIZE: speech_pb2.ENDPOINT_REASON_FINALIZE,
    EndReason.END_OF_STREAM: speech_pb2.ENDPOINT_REASON_END_OF_STREAM,
    EndReason.SHUTDOWN: speech_pb2.ENDPOINT_REASON_SHUTDOWN,
}


@dataclass(frozen=True)
class StreamTuning:
    """Per-gateway knobs that are not part of a client's config."""

    max_chunk_bytes: int
    interim_interval_s: float
    interim_duty_cycle: float
    """Most of the time a stream's interims may keep the STT service busy; the rest stays
    free so that a final is not stuck behind an interim that cannot be interrupted."""
    condition_on_previous: bool
    hallucination: HallucinationOptions
    limits: StreamLimits
    final_persist_s: float
    """How long a final is retried while the STT service is overloaded."""


@dataclass(frozen=True)
class _Speculation:
    """A final transcribed before its endpoint; it stands if the utterance's audio is the
    same audio."""

    speech_end: SpeechEnded
    audio: np.ndarray
    response: stt_pb2.TranscribeResponse | None
    """None when the STT call failed: the final then makes its own."""

    def response_for(self, utterance: UtteranceEnded) -> stt_pb2.TranscribeResponse | None:
        """The transcription, if the utterance ended with exactly the audio transcribed."""
        if self.speech_end.segment_id == utterance.segment_id and np.array_equal(
            self.audio, utterance.audio
        ):
            return self.response
        return None


@dataclass(frozen=True)
class Languages:
    """What an utterance is spoken in ("" to detect) and what to translate it into."""

    spoken: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class _PendingFinal:
    utterance: UtteranceEnded
    detected_at: float
    """Monotonic time the endpoint was detected: the start of the final's latency."""
    languages: Languages


class _EndOfStream:
    pass


def _stability(previous: str, current: str) -> float:
    """Share of the current interim's words already present, in order, in the previous one."""
    words, before = current.split(), previous.split()
    if not words:
        return 0.0
    same = 0
    for a, b in zip(words, before, strict=False):
        if a != b:
            break
        same += 1
    return same / len(words)


def _confidence(segments: tuple[stt_pb2.Segment, ...]) -> float:
    if not segments:
        return 0.0
    return float(np.mean([math.exp(s.avg_logprob) for s in segments]))


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
    ) -> None:
        """`live` streams are held to the pace and idle limits; Recognize's whole file is
        not."""
        self._options = options
        self._spans = spans
        self._metrics = metrics
        self._model = model
        self._session_id = session_id
        self._stt = stt
        self._tuning = tuning
        self._translator = translator
        self._languages = Languages(options.language_code, options.translation_targets)
        self._utterance_languages = self._languages
        try:
            self._decoder = make_decoder(options.encoding, options.sample_rate_hz, options.channels)
        except AudioFormatError as error:
            raise InvalidRequestError(str(error)) from None
        self._segmenter = Segmenter(DualVad(vad_model, options.vad), options.segmenter)
        self._out: asyncio.Queue[Response | BaseException | _EndOfStream] = asyncio.Queue()
        self._finals: deque[_PendingFinal] = deque()
        self._wake = asyncio.Event()
        self._input_done = False
        self._reader: asyncio.Task[None] | None = None
        self._drain_cut: asyncio.TimerHandle | None = None
        self._live = live
        self._pace = AudioPace(tuning.limits, started_at=time.monotonic(), live=live)
        self.ended_by: GatewayError | None = None
        """Why the server ended the stream after its last final (draining, a limit)."""
        self._revisions: Counter[int] = Counter()
        self._interim_task: asyncio.Task[None] | None = None
        self._interim_translation: asyncio.Task[None] | None = None
        self._interim_language = ""
        self._interim_result = speech_pb2.StreamingRecognitionResult()
        self._speech_start_s = 0.0
        self._last_ended_segment = 0
        self._speech_end: SpeechEnded | None = None
        self._speculation: _Speculation | None = None
        self._interim_segment = 0
        self._interim_until_s = 0.0
        self._interim_text = ""
        self._interim_ready_at = 0.0
        self._last_audio_at = time.monotonic()
        self._held_until = 0.0
        """Until when the reader holds a too fast sender back (see `_keep_pace`)."""
        self._previous_text = ""
        self.audio_seconds = 0.0

    @property
    def model_name(self) -> str:
        return self._model.name

    async def run(self, requests: AsyncIterator[Request]) -> AsyncIterator[Response]:
        """Yields responses until the input ends and every final is out, or raises."""
        self._reader = self._task(self._guard(self._read(requests)), "reader")
        tasks = [self._reader, self._task(self._guard(self._transcribe()), "transcriber")]
        if self._live:
            tasks.append(self._task(self._watch_idle(), "idle watch"))
        try:
            while True:
                item = await self._out.get()
                if isinstance(item, _EndOfStream):
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            tasks.extend(t for t in (self._interim_task, self._interim_translation) if t)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._drain_cut is not None:
                self._drain_cut.cancel()
            self._decoder.close()
            self._spans.close()

    def _task(self, work: Coroutine[Any, Any, None], role: str) -> asyncio.Task[None]:
        """A task of this stream, named after its session so that a task dump shows whose
        it is."""
        return asyncio.create_task(work, name=f"session {self._session_id} {role}")

    def drain(self, cut_after_s: float, reason: GatewayError) -> None:
        """Ends the stream at its next pause, for a server that is shutting down.

        The utterance in progress goes on until it ends by itself, or for `cut_after_s` at
        most; then no more audio is read, its final result (and any still pending) is sent,
        and the response stream ends with `ended_by` set to `reason`.
        """
        if self._input_done or self.ended_by is not None:
            return
        self.ended_by = reason
        if self._segmenter.state is SpeechState.INACTIVE:
            self._stop_reading(None)
        else:
            self._drain_cut = asyncio.get_running_loop().call_later(
                cut_after_s, self._stop_reading, EndReason.SHUTDOWN
            )

    def _end_now(self, reason: GatewayError) -> None:
        """Ends the stream at once for a broken limit; what was said still gets its final."""
        if self._input_done:
            return
        self.ended_by = reason
        self._stop_reading(EndReason.END_OF_STREAM)

    async def _watch_idle(self) -> None:
        idle_timeout_s = self._tuning.limits.idle_timeout_s
        while not self._input_done:
            silent_s = time.monotonic() - max(self._last_audio_at, self._held_until)
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
            self._handle(self._segmenter.finalize(cut))
        self._input_done = True
        self._wake.set()

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

    async def _read(self, requests: AsyncIterator[Request]) -> None:
        async for request in requests:
            self._on_request(request)
            if request.WhichOneof("streaming_request") == "control":
                await self._on_control(request.control)
            if self._input_done:
                return
            await self._keep_pace()
        tail = self._decoder.flush()
        self._count_audio(len(tail))
        self._handle(self._segmenter.push(tail))
        self._handle(self._segmenter.finalize(EndReason.END_OF_STREAM))
        self._input_done = True
        self._wake.set()

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
            self._handle(self._segmenter.finalize(EndReason.FINALIZE))
        elif action == "update_languages":
            update = control.update_languages
            spoken, targets = parse_languages(
                update.language_code, update.translation_language_codes
            )
            await self._stt.resolve(self._model.name, spoken)
            await self._translator.check(spoken, targets, multilingual=self._multilingual)
            self._languages = Languages(spoken, targets)
            if self._segmenter.state is SpeechState.INACTIVE:
                self._utterance_languages = self._languages
            logger.info("languages changed to %s → %s", spoken or "auto", ", ".join(targets))
        else:
            raise InvalidRequestError("empty control message: set finalize or update_languages")

    @property
    def _multilingual(self) -> bool:
        return not self._model.english_only

    def _on_audio(self, chunk: bytes) -> None:
        if len(chunk) > self._tuning.max_chunk_bytes:
            raise InvalidRequestError(
                f"audio chunk of {len(chunk)} bytes exceeds the limit of "
                f"{self._tuning.max_chunk_bytes} bytes: send 20-100 ms per message"
            )
        samples = self._decoder.decode(chunk)
        self._last_audio_at = time.monotonic()
        self._count_audio(len(samples))
        self._handle(self._segmenter.push(samples))
        self._wake.set()
        broken = self._pace.check(self.audio_seconds)
        if broken is not None:
            self._end_now(broken)

    def _count_audio(self, samples: int) -> None:
        seconds = samples / SAMPLE_RATE_HZ
        self.audio_seconds += seconds
        self._metrics.audio_seconds.inc(seconds)

    def _handle(self, events: list[Event]) -> None:
        """Speech ends for clients at the endpoint: pauses inside an utterance are not events."""
        for event in events:
            if isinstance(event, SpeechStarted):
                self._spans.speech_started(event.segment_id, event.speech_start_s)
                self._speech_start_s = event.speech_start_s
                self._utterance_languages = self._languages
                self._speech_event(
                    EventType.SPEECH_EVENT_TYPE_ACTIVITY_BEGIN,
                    event.speech_start_s,
                    event.segment_id,
                )
            elif isinstance(event, SpeechEnded):
                self._speech_end = event
                self._cancel_interim()
            elif isinstance(event, UtteranceEnded):
                self._speech_event(
                    EventType.SPEECH_EVENT_TYPE_ACTIVITY_END, event.speech_end_s, event.segment_id
                )
                self._end_utterance(event)

    def _cancel_interim(self) -> None:
        """An interim is stale once speech stops: the final will say more, and sooner."""
        if self._interim_task is not None:
            self._interim_task.cancel()

    def _end_utterance(self, utterance: UtteranceEnded) -> None:
        self._cancel_interim()
        self._spans.utterance_ended(
            utterance.segment_id,
            reason=utterance.reason.name,
            audio_s=len(utterance.audio) / SAMPLE_RATE_HZ,
        )
        self._last_ended_segment = utterance.segment_id
        self._speech_end = None
        self._finals.append(
            _PendingFinal(utterance, self._last_audio_at, self._utterance_languages)
        )
        if self.ended_by is not None:
            self._stop_reading(None)
        if self._options.single_utterance:
            self._speech_event(
                EventType.SPEECH_EVENT_TYPE_END_OF_SINGLE_UTTERANCE,
                utterance.speech_end_s,
                utterance.segment_id,
                always=True,
            )
            self._input_done = True
        self._wake.set()

    def _speech_event(
        self, kind: int, offset_s: float, segment_id: int, *, always: bool = False
    ) -> None:
        if self._options.speech_events or always:
            event = speech_pb2.SpeechEvent(
                type=kind, offset=duration(offset_s), segment_id=segment_id
            )
            self._out.put_nowait(Response(speech_event=event))

    async def _transcribe(self) -> None:
        while True:
            if self._finals:
                await self._final(self._finals.popleft())
                continue
            if self._input_done:
                self._out.put_nowait(_EndOfStream())
                return
            speculation = self._speculation_audio()
            if speculation is not None:
                await self._speculate(*speculation)
                continue
            interim = self._interim_due()
            if interim is None:
                await self._wake.wait()
                self._wake.clear()
                continue
            started = time.monotonic()
            self._interim_task = task = self._task(self._interim(*interim), "interim")
            await asyncio.wait([task])
            self._interim_task = None
            if not task.cancelled() and task.exception() is not None:
                error = task.exception()
                shed = isinstance(error, OverloadedError)
                logger.log(
                    logging.DEBUG if shed else logging.WARNING,
                    "interim transcription %s: %s",
                    "shed" if shed else "failed",
                    error,
                )
            busy_s = time.monotonic() - started
            self._interim_ready_at = time.monotonic() + busy_s * (
                1 / self._tuning.interim_duty_cycle - 1
            )

    def _speculation_audio(self) -> tuple[SpeechEnded, np.ndarray] | None:
        """The audio the final will have if speech does not resume, once all of it is here.

        The segmenter ends an utterance TRAILING_SILENCE_S after its speech; when that much
        silence has arrived, the final's audio is known and can be transcribed right away.
        """
        end = self._speech_end
        if end is None or self._segmenter.state is not SpeechState.SILENCE:
            return None
        if self._speculation is not None and self._speculation.speech_end == end:
            return None
        progress = self._segmenter.utterance_so_far()
        if progress is None:
            return None
        audio, audio_start_s = progress
        keep = round((end.speech_end_s + TRAILING_SILENCE_S - audio_start_s) * SAMPLE_RATE_HZ)
        if len(audio) < keep:
            return None
        return end, np.array(audio[:keep], copy=True)

    async def _speculate(self, end: SpeechEnded, audio: np.ndarray) -> None:
        """Transcribes the would-be final; if speech resumed meanwhile, the text still
        serves as an interim result of the utterance so far."""
        audio_at = self._last_audio_at
        try:
            with self._spans.within(end.segment_id):
                response = await self._stt.transcribe(self._final_request(audio, end.segment_id))
        except GatewayError as error:
            logger.warning("speculative final failed, the final will be retried: %s", error)
            self._speculation = _Speculation(end, audio, None)
            return
        self._speculation = _Speculation(end, audio, response)
        if self._options.interim_results and self._segmenter.state is SpeechState.ACTIVE:
            self._publish_interim(end.segment_id, response, end.speech_end_s, audio_at)

    def _interim_due(self) -> tuple[int, np.ndarray, float, float] | None:
        if not self._options.interim_results or self._segmenter.state is not SpeechState.ACTIVE:
            return None
        if time.monotonic() < self._interim_ready_at:
            return None
        progress = self._segmenter.utterance_so_far()
        if progress is None:
            return None
        audio, audio_start_s = progress
        segment_id = self._segmenter.segment_id
        if segment_id != self._interim_segment:
            self._interim_segment = segment_id
            self._interim_until_s = 0.0
            self._interim_text = ""
        end_s = audio_start_s + len(audio) / SAMPLE_RATE_HZ
        if end_s - self._interim_until_s < self._tuning.interim_interval_s:
            return None
        self._interim_until_s = end_s
        return segment_id, np.array(audio, copy=True), audio_start_s, self._last_audio_at

    def _request(
        self,
        audio: np.ndarray,
        segment_id: int,
        priority: int,
        *,
        words: bool,
        prompt: str,
        language_code: str | None = None,
        task: int = stt_pb2.TASK_TRANSCRIBE,
    ) -> stt_pb2.TranscribeRequest:
        spoken = self._utterance_languages.spoken if language_code is None else language_code
        return stt_pb2.TranscribeRequest(
            audio_pcm16=pcm16(audio),
            model=self._model.name,
            language_code=spoken,
            task=task,
            priority=priority,
            word_timestamps=words,
            initial_prompt=prompt,
            session_id=self._session_id,
            segment_id=segment_id,
        )

    async def _interim(
        self, segment_id: int, audio: np.ndarray, audio_start_s: float, audio_at: float
    ) -> None:
        segment_id_var.set(segment_id)
        request = self._request(
            audio, segment_id, stt_pb2.PRIORITY_INTERIM, words=False, prompt=self._prompt()
        )
        with self._spans.within(segment_id):
            response = await self._stt.transcribe(request)
        self._publish_interim(
            segment_id, response, audio_start_s + len(audio) / SAMPLE_RATE_HZ, audio_at
        )

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

    def _publish_interim(
        self,
        segment_id: int,
        response: stt_pb2.TranscribeResponse,
        end_s: float,
        audio_at: float,
    ) -> None:
        """Sends an interim result unless its segment has moved on or the text is unchanged."""
        if segment_id != self._interim_segment or segment_id <= self._last_ended_segment:
            return
        verdict = screen(response.segments, self._tuning.hallucination)
        if verdict.suppression is not None:
            logger.debug("interim suppressed: %s", verdict.suppression.detail)
        if not verdict.text or verdict.text == self._interim_text:
            return
        stability = _stability(self._interim_text, verdict.text)
        self._interim_text = verdict.text
        self._interim_language = response.language_code
        self._revisions[segment_id] += 1
        result = speech_pb2.StreamingRecognitionResult(
            segment_id=segment_id,
            revision=self._revisions[segment_id],
            is_final=False,
            stability=stability,
            transcript=verdict.text,
            confidence=_confidence(verdict.kept),
            start_offset=duration(self._speech_start_s),
            end_offset=duration(end_s),
            language_code=response.language_code,
            language_probability=response.language_probability,
            processing_latency=duration(time.monotonic() - audio_at),
        )
        self._interim_result = result
        self._metrics.interim_latency.observe(time.monotonic() - audio_at)
        self._out.put_nowait(Response(result=result))
        if self._options.translate_interim and self._utterance_languages.targets:
            translating = self._interim_translation
            if translating is None or translating.done():
                self._interim_translation = self._task(
                    self._translate_interim(), "interim translation"
                )

    async def _translate_interim(self) -> None:
        """Translates the latest interim text, one translation in flight per stream (so one
        per target); a text superseded while it was translated is translated again, and
        nothing is sent once the segment's final is out."""
        while True:
            text, segment_id = self._interim_text, self._interim_segment
            with self._spans.within(segment_id):
                translations = await self._translator.translate(
                    text,
                    self._utterance_languages.spoken or self._interim_language,
                    self._utterance_languages.targets,
                    multilingual=self._multilingual,
                    whisper=_whisper_translates_finals_only,
                    session_id=self._session_id,
                    segment_id=segment_id,
                )
            if segment_id != self._interim_segment or segment_id <= self._last_ended_segment:
                return
            if text == self._interim_text:
                break
        self._revisions[segment_id] += 1
        translated = speech_pb2.StreamingRecognitionResult()
        translated.CopyFrom(self._interim_result)
        translated.revision = self._revisions[segment_id]
        translated.translations.extend(translations)
        self._out.put_nowait(Response(result=translated))

    async def _whisper_to_english(self, utterance: UtteranceEnded, spoken: str) -> str:
        """Whisper's own speech-to-English translation of the utterance's audio."""
        request = self._request(
            utterance.audio,
            utterance.segment_id,
            stt_pb2.PRIORITY_FINAL,
            words=False,
            prompt="",
            language_code=spoken,
            task=stt_pb2.TASK_TRANSLATE,
        )
        response = await self._stt.transcribe(request, persist_s=self._tuning.final_persist_s)
        return screen(response.segments, self._tuning.hallucination).text

    def _prompt(self) -> str:
        return self._previous_text[-PROMPT_CHARS:] if self._tuning.condition_on_previous else ""

    def _final_request(
        self, audio: np.ndarray, segment_id: int, language_code: str | None = None
    ) -> stt_pb2.TranscribeRequest:
        return self._request(
            audio,
            segment_id,
            stt_pb2.PRIORITY_FINAL,
            words=self._options.word_time_offsets,
            prompt=self._prompt(),
            language_code=language_code,
        )

    async def _final(self, pending: _PendingFinal) -> None:
        utterance = pending.utterance
        segment_id_var.set(utterance.segment_id)
        speculation, self._speculation = self._speculation, None
        with self._spans.within(utterance.segment_id):
            try:
                response = speculation.response_for(utterance) if speculation else None
                if response is None:
                    request = self._final_request(
                        utterance.audio, utterance.segment_id, pending.languages.spoken
                    )
                    response = await self._stt.transcribe(
                        request, persist_s=self._tuning.final_persist_s
                    )
            except GatewayError as error:
                raise type(error)(
                    f"segment {utterance.segment_id} was not transcribed: {error}"
                ) from error
            verdict = screen(response.segments, self._tuning.hallucination)
            translations = await self._translator.translate(
                verdict.text,
                pending.languages.spoken or response.language_code,
                pending.languages.targets,
                multilingual=self._multilingual,
                whisper=lambda: self._whisper_to_english(utterance, response.language_code),
                session_id=self._session_id,
                segment_id=utterance.segment_id,
            )
        if verdict.text:
            self._previous_text = f"{self._previous_text} {verdict.text}".strip()[-PROMPT_CHARS:]
        self._revisions[utterance.segment_id] += 1
        latency_s = time.monotonic() - pending.detected_at
        words = [
            speech_pb2.WordInfo(
                word=word.word.strip(),
                start_offset=duration(utterance.audio_start_s + word.start_s),
                end_offset=duration(utterance.audio_start_s + word.end_s),
                confidence=word.probability,
            )
            for segment in verdict.kept
            for word in segment.words
        ]
        result = speech_pb2.StreamingRecognitionResult(
            segment_id=utterance.segment_id,
            revision=self._revisions.pop(utterance.segment_id),
            is_final=True,
            stability=1.0,
            transcript=verdict.text,
            confidence=_confidence(verdict.kept),
            words=words,
            start_offset=duration(utterance.speech_start_s),
            end_offset=duration(utterance.speech_end_s),
            language_code=response.language_code,
            language_probability=response.language_probability,
            processing_latency=duration(latency_s),
            suppression=verdict.suppression,
            endpoint_reason=_END_REASONS[utterance.reason],
            translations=translations,
        )
        self._observe_final(result, response.audio_seconds)
        logger.info(
            "final: %.2f s of audio, queue %.3f s, inference %.3f s, latency %.3f s%s",
            response.audio_seconds,
            response.queue_seconds,
            response.inference_seconds,
            latency_s,
            f", suppressed ({verdict.suppression.detail})" if verdict.suppression else "",
        )
        self._out.put_nowait(Response(result=result))
