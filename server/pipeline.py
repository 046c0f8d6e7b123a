"""The recognition pipeline of one stream: STT calls, one at a time, as the policy decides.

The stream tells the pipeline what its audio does (speech started, paused, an utterance
ended); the pipeline asks `policy.decide` what to do next, makes that call through its
`Transcriber`, and hands each result to its `Sink`: interims as they come, finals in
segment order. It knows nothing of gRPC or protobufs, so it is tested with a fake
transcriber and a fake audio source.
"""

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dragoman.errors import StatusError
from dragoman.gateway.audio import SAMPLE_RATE_HZ
from dragoman.gateway.errors import OverloadedError
from dragoman.gateway.phrase_cut import PhraseCut, choose
from dragoman.gateway.policy import Action, PolicyTuning, View, decide
from dragoman.gateway.segmenter import (
    TRAILING_SILENCE_S,
    SpeechEnded,
    SpeechStarted,
    SpeechState,
    StreamPosition,
    UtteranceEnded,
)
from dragoman.gateway.transcriber import Call, Purpose, Transcriber, Transcript
from dragoman.logs import segment_id_var

logger = logging.getLogger(__name__)

PROMPT_CHARS = 200
"""How much of the previous final transcript conditions the next one."""


@dataclass(frozen=True)
class Languages:
    """What an utterance is spoken in ("" to detect) and what to translate it into."""

    spoken: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class PendingFinal:
    utterance: UtteranceEnded
    detected_at: float
    """Monotonic time the end of the utterance was known: where its latency starts."""
    languages: Languages
    transcript: Transcript | None = None
    """Known already (the words before a phrase cut); None: to transcribe."""


class Speech(Protocol):
    """The audio source as the pipeline sees it."""

    last_audio_at: float

    @property
    def state(self) -> SpeechState: ...

    @property
    def segment_id(self) -> int: ...

    @property
    def speech_s(self) -> float: ...

    def utterance_so_far(self) -> tuple[np.ndarray, float] | None: ...

    def cut_at(self, at_s: float, pause: tuple[float, float]) -> bool: ...


class Sink(Protocol):
    """Where the pipeline's results go."""

    def interim(self, segment_id: int, transcript: Transcript, audio_at: float) -> bool:
        """Sends an interim; False when it is not sent (its segment is final already)."""
        ...

    async def final(self, pending: PendingFinal, transcript: Transcript) -> None: ...

    def discarded(self, model_s: float) -> None:
        """Counts model time spent on a result that nobody will see."""
        ...


@dataclass(frozen=True)
class _Speculation:
    segment_id: int
    speech_end_s: float
    samples: int
    """Length of the audio transcribed; the final must have exactly that audio."""
    audio_at: float
    """When the last of that audio had arrived."""
    transcript: Transcript | None
    """None while it runs, or when it failed."""


class RecognitionPipeline:
    def __init__(
        self,
        speech: Speech,
        transcriber: Transcriber,
        sink: Sink,
        tuning: PolicyTuning,
        *,
        interim_results: bool,
        word_time_offsets: bool,
        prompt_previous: bool,
    ) -> None:
        self._speech = speech
        self._transcriber = transcriber
        self._sink = sink
        self._tuning = tuning
        self._interim_results = interim_results
        self._word_time_offsets = word_time_offsets
        self._prompt_previous = prompt_previous
        self._finals: deque[PendingFinal] = deque()
        self._final_in_flight: PendingFinal | None = None
        self._wake = asyncio.Event()
        self._input_done = False
        self._languages = Languages("", ())
        self._speech_end: SpeechEnded | None = None
        self._speculation: _Speculation | None = None
        self._last_interim_at: float | None = None
        self._last_interim_audio_s = 0.0
        self._interims_free_at = 0.0
        self._probed_audio_s: float | None = None
        self._cut: tuple[int, PhraseCut, Transcript] | None = None
        self._carried: Transcript | None = None
        """What the phrase probe said of the speech after a cut: the next interim."""
        self._previous_text = ""

    # What the stream tells the pipeline.

    def speech_started(self, event: SpeechStarted, languages: Languages) -> None:
        self._languages = languages
        self._speech_end = None
        self._last_interim_at = None
        self._last_interim_audio_s = 0.0
        self._probed_audio_s = None
        self._cut = None
        self._wake.set()

    def speech_paused(self, event: SpeechEnded) -> None:
        self._speech_end = event
        self._wake.set()

    def utterance_ended(self, utterance: UtteranceEnded, detected_at: float) -> None:
        transcript = None
        if self._cut is not None and self._cut[0] == utterance.segment_id:
            transcript = self._cut[2]
        self._cut = None
        self._speech_end = None
        self._finals.append(PendingFinal(utterance, detected_at, self._languages, transcript))
        self._wake.set()

    def audio_arrived(self) -> None:
        self._wake.set()

    def input_ended(self) -> None:
        self._input_done = True
        self._wake.set()

    @property
    def earliest_unfinished(self) -> StreamPosition | None:
        """The first audio and segment id of the earliest ended utterance whose final is
        not out yet; None when every final is out."""
        waiting = [p.utterance for p in [*self._finals, self._final_in_flight] if p is not None]
        if not waiting:
            return None
        return min(waiting, key=lambda utterance: utterance.segment_id).start

    # The loop.

    async def run(self) -> None:
        """Returns once the input has ended and every final is out."""
        while True:
            if self._input_done and not self._finals:
                return
            self._use_overtaken_speculation()
            decision = decide(self._view(), self._tuning)
            action = decision.action
            if action is Action.FINAL:
                self._final_in_flight = self._finals.popleft()
                await self._final(self._final_in_flight)
                self._final_in_flight = None
            elif action is Action.CUT:
                self._make_cut()
            elif action is Action.PROBE:
                await self._probe()
            elif action is Action.SPECULATE:
                await self._speculate()
            elif action is Action.INTERIM:
                await self._interim()
            else:
                await self._sleep(decision.wake_at)

    async def _sleep(self, until: float | None) -> None:
        self._wake.clear()
        timeout = None if until is None else max(until - time.monotonic(), 0.0)
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the
        # wake-up does, and the stream's pipeline then outlived the stream.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    def _view(self) -> View:
        progress = self._speech.utterance_so_far()
        utterance_s = len(progress[0]) / SAMPLE_RATE_HZ if progress else 0.0
        segment_id = self._speech.segment_id
        end = self._speech_end
        speculated = (
            self._speculation is not None
            and end is not None
            and (self._speculation.segment_id, self._speculation.speech_end_s)
            == (end.segment_id, end.speech_end_s)
        )
        return View(
            now=time.monotonic(),
            finals_waiting=bool(self._finals),
            state=self._speech.state,
            speech_s=self._speech.speech_s,
            utterance_s=utterance_s,
            final_audio_ready=self._final_audio() is not None,
            speculated=speculated,
            interims_wanted=self._interim_results,
            last_interim_at=self._last_interim_at,
            last_interim_audio_s=self._last_interim_audio_s,
            interims_free_at=self._interims_free_at,
            cut_known=self._cut is not None and self._cut[0] == segment_id,
            probed_audio_s=self._probed_audio_s,
        )

    # What a final would transcribe, and the calls.

    def _final_audio(self) -> tuple[np.ndarray, float] | None:
        """The audio the final will have if speech does not resume, once all of it is here:
        the segmenter keeps TRAILING_SILENCE_S after the speech."""
        end = self._speech_end
        progress = self._speech.utterance_so_far()
        if end is None or progress is None or self._speech.state is not SpeechState.SILENCE:
            return None
        audio, start_s = progress
        keep = round((end.speech_end_s + TRAILING_SILENCE_S - start_s) * SAMPLE_RATE_HZ)
        if len(audio) < keep:
            return None
        return audio[:keep], start_s

    def _call(
        self,
        purpose: Purpose,
        audio: np.ndarray,
        start_s: float,
        *,
        words: bool = False,
        pending: PendingFinal | None = None,
    ) -> Call:
        """A call on the utterance in progress, or on the one that `pending` ended."""
        segment_id = pending.utterance.segment_id if pending else self._speech.segment_id
        languages = pending.languages if pending else self._languages
        return Call(
            segment_id=segment_id,
            audio=audio if pending else np.array(audio, copy=True),
            audio_start_s=start_s,
            purpose=purpose,
            language=languages.spoken,
            words=words,
            prompt=self._previous_text[-PROMPT_CHARS:] if self._prompt_previous else "",
        )

    async def _final(self, pending: PendingFinal) -> None:
        utterance = pending.utterance
        segment_id_var.set(utterance.segment_id)
        speculated = self._speculated(utterance)
        transcript = pending.transcript or speculated
        if transcript is None:
            call = self._call(
                Purpose.FINAL,
                utterance.audio,
                utterance.audio_start_s,
                words=self._word_time_offsets,
                pending=pending,
            )
            try:
                transcript = await self._transcriber.transcribe(call)
            except StatusError as error:
                raise type(error)(
                    f"segment {utterance.segment_id} was not transcribed: {error}"
                ) from error
        if transcript.text:
            self._previous_text = f"{self._previous_text} {transcript.text}".strip()
            self._previous_text = self._previous_text[-PROMPT_CHARS:]
        await self._sink.final(pending, transcript)

    def _speculated(self, utterance: UtteranceEnded) -> Transcript | None:
        """The speculation's transcript, if the utterance ended with exactly its audio, however
        it ended (the endpoint, a finalize or the end of the stream during the pause)."""
        speculation, self._speculation = self._speculation, None
        if speculation is None or speculation.transcript is None:
            return None
        if speculation.segment_id == utterance.segment_id and speculation.samples == len(
            utterance.audio
        ):
            return speculation.transcript
        self._sink.discarded(speculation.transcript.model_s)
        return None

    def _use_overtaken_speculation(self) -> None:
        """A speculation finished while speech was paused, and speech went on (even if it
        has paused again since): it can no longer be the final, so it is the next interim."""
        speculation = self._speculation
        end = self._speech_end
        if (
            speculation is not None
            and speculation.transcript is not None
            and self._speech.segment_id == speculation.segment_id
            and (
                self._speech.state is SpeechState.ACTIVE
                or (end is not None and end.speech_end_s != speculation.speech_end_s)
            )
        ):
            self._speculation = None
            self._publish_interim(
                speculation.segment_id,
                speculation.transcript,
                speculation.audio_at,
                speculation.samples,
                stand_in=True,
            )

    async def _speculate(self) -> None:
        final_audio = self._final_audio()
        end = self._speech_end
        assert final_audio is not None
        assert end is not None
        audio, start_s = final_audio
        running = _Speculation(
            end.segment_id, end.speech_end_s, len(audio), self._speech.last_audio_at, None
        )
        self._speculation = running
        call = self._call(Purpose.SPECULATION, audio, start_s, words=self._word_time_offsets)
        try:
            transcript = await self._transcriber.transcribe(call)
        except StatusError as error:
            logger.warning("speculative final failed, the final will be retried: %s", error)
            return
        self._speculation = dataclasses.replace(running, transcript=transcript)

    async def _interim(self) -> None:
        progress = self._speech.utterance_so_far()
        assert progress is not None
        audio, start_s = progress
        segment_id = self._speech.segment_id
        started = time.monotonic()
        self._last_interim_at = started
        self._last_interim_audio_s = len(audio) / SAMPLE_RATE_HZ
        audio_at = self._speech.last_audio_at
        try:
            transcript = await self._transcriber.transcribe(
                self._call(Purpose.INTERIM, audio, start_s)
            )
        except StatusError as error:
            shed = isinstance(error, OverloadedError)
            logger.log(
                logging.DEBUG if shed else logging.WARNING,
                "interim transcription %s: %s",
                "shed" if shed else "failed",
                error,
            )
            return
        finally:
            busy_s = time.monotonic() - started
            duty = self._tuning.interim_duty_cycle
            self._interims_free_at = time.monotonic() + busy_s * (1 / duty - 1)
        self._publish_interim(segment_id, transcript, audio_at, len(audio), stand_in=False)

    def _publish_interim(
        self,
        segment_id: int,
        transcript: Transcript,
        audio_at: float,
        samples: int,
        *,
        stand_in: bool,
    ) -> None:
        """`stand_in`: the result of another call (a speculation, a phrase probe) serves as
        this interim, and counts as one for the interim timing."""
        if stand_in and segment_id == self._speech.segment_id:
            self._last_interim_at = time.monotonic()
            self._last_interim_audio_s = samples / SAMPLE_RATE_HZ
        if not self._sink.interim(segment_id, transcript, audio_at):
            self._sink.discarded(transcript.model_s)

    async def _probe(self) -> None:
        """Decodes the long speech so far with word timings, to know where to cut it."""
        progress = self._speech.utterance_so_far()
        assert progress is not None
        audio, start_s = progress
        segment_id = self._speech.segment_id
        self._probed_audio_s = len(audio) / SAMPLE_RATE_HZ
        speech_start_s = start_s + self._probed_audio_s - self._speech.speech_s
        audio_at = self._speech.last_audio_at
        try:
            transcript = await self._transcriber.transcribe(
                self._call(Purpose.PHRASE_PROBE, audio, start_s, words=True)
            )
        except StatusError as error:
            logger.warning("phrase probe failed: %s", error)
            return
        cut = choose(
            transcript.words, speech_start_s=speech_start_s, audio_end_s=transcript.audio_end_s
        )
        if cut is not None and segment_id == self._speech.segment_id:
            self._cut = (segment_id, cut, self._piece(transcript, cut))
            self._carried = self._rest(transcript, cut)
        elif self._interim_results:
            self._publish_interim(segment_id, transcript, audio_at, len(audio), stand_in=True)
        else:
            self._sink.discarded(transcript.model_s)

    def _make_cut(self) -> None:
        assert self._cut is not None
        _, cut, _ = self._cut
        if not self._speech.cut_at(cut.at_s, cut.pause):
            self._cut = None
            return
        carried, self._carried = self._carried, None
        if carried is not None and self._interim_results:
            covered = round((carried.audio_end_s - cut.at_s) * SAMPLE_RATE_HZ)
            self._publish_interim(
                self._speech.segment_id, carried, self._speech.last_audio_at, covered, stand_in=True
            )

    @staticmethod
    def _piece(transcript: Transcript, cut: PhraseCut) -> Transcript:
        return _with_words(transcript, cut.committed, end_s=cut.at_s)

    @staticmethod
    def _rest(transcript: Transcript, cut: PhraseCut) -> Transcript:
        return _with_words(transcript, cut.rest, end_s=transcript.audio_end_s)


def _with_words(transcript: Transcript, words: tuple, *, end_s: float) -> Transcript:
    """The part of a transcript that is these words; its model time goes with the piece."""
    return Transcript(
        text="".join(word.word for word in words).strip(),
        words=words,
        confidence=transcript.confidence,
        language_code=transcript.language_code,
        language_probability=transcript.language_probability,
        suppression=None,
        audio_end_s=end_s,
        model_s=transcript.model_s,
    )
