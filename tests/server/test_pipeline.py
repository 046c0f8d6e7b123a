"""The recognition pipeline against a fake transcriber whose calls the test answers, a fake
audio source the test moves through speech, pauses and ends, and a sink that records.

`Stream` tells the pipeline what the audio did in the order RecognitionStream._handle
does, so the pipeline sees the same sequences of events as in the gateway.
"""

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import pytest

from dragoman.errors import StatusError
from dragoman.gateway import pipeline as pipeline_module
from dragoman.gateway.audio import SAMPLE_RATE_HZ
from dragoman.gateway.errors import BackendUnavailableError, OverloadedError
from dragoman.gateway.pipeline import Languages, PendingFinal, RecognitionPipeline
from dragoman.gateway.policy import PROBE_EVERY_S, PolicyTuning
from dragoman.gateway.segmenter import (
    TRAILING_SILENCE_S,
    EndReason,
    SpeechEnded,
    SpeechStarted,
    SpeechState,
    UtteranceEnded,
)
from dragoman.gateway.transcriber import Call, Purpose, TimedWord, Transcript

LANGUAGES = Languages("en", ())
PRE_SPEECH_S = 0.5
CALL_TIMEOUT_S = 1.0
"""A call the test waits for that has not come by then never will."""
TUNING = PolicyTuning(
    interim_interval_s=60.0,
    first_interim_s=0.0,
    interim_duty_cycle=1.0,
    max_utterance_s=15.0,
)
"""One interim as soon as speech starts, then none within a test: every call is one the
test expects."""


def samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE_HZ)


def transcript(
    text: str,
    *,
    words: tuple[TimedWord, ...] = (),
    audio_end_s: float = 0.0,
    model_s: float = 0.1,
) -> Transcript:
    return Transcript(
        text=text,
        words=words,
        confidence=0.9,
        language_code="en",
        language_probability=1.0,
        suppression=None,
        audio_end_s=audio_end_s,
        model_s=model_s,
    )


@dataclass
class Pending:
    """A call in flight, answered when the test says."""

    call: Call
    answer: asyncio.Future[Transcript]

    def resolve(
        self,
        text: str,
        *,
        words: tuple[TimedWord, ...] = (),
        audio_end_s: float = 0.0,
        model_s: float = 0.1,
    ) -> None:
        self.answer.set_result(
            transcript(text, words=words, audio_end_s=audio_end_s, model_s=model_s)
        )

    def fail(self, error: StatusError) -> None:
        self.answer.set_exception(error)


Respond = Callable[[Call], Awaitable[Transcript]]


class FakeTranscriber:
    """Each call waits for the test to answer it, unless `respond` answers it."""

    def __init__(self, respond: Respond | None) -> None:
        self.calls: list[Call] = []
        self._respond = respond
        self._waiting: asyncio.Queue[Pending] = asyncio.Queue()

    async def transcribe(self, call: Call) -> Transcript:
        self.calls.append(call)
        if self._respond is not None:
            return await self._respond(call)
        pending = Pending(call, asyncio.get_running_loop().create_future())
        self._waiting.put_nowait(pending)
        return await pending.answer

    async def to_english(self, call: Call) -> str:
        raise AssertionError("the pipeline never translates")

    async def next_call(self) -> Pending:
        return await asyncio.wait_for(self._waiting.get(), CALL_TIMEOUT_S)

    @property
    def purposes(self) -> list[Purpose]:
        return [call.purpose for call in self.calls]


class FakeSpeech:
    """What the segmenter would hold; `on_cut` stands for the events a cut causes."""

    def __init__(self, segment_id: int) -> None:
        self.state = SpeechState.INACTIVE
        self.segment_id = segment_id
        self.speech_s = 0.0
        self.audio = np.zeros(0, dtype=np.float32)
        self.audio_start_s = 0.0
        self.last_audio_at = time.monotonic()
        self.cuts: list[tuple[float, tuple[float, float]]] = []
        self.on_cut: Callable[[float], None] = lambda at_s: None

    @property
    def end_s(self) -> float:
        return self.audio_start_s + len(self.audio) / SAMPLE_RATE_HZ

    def utterance_so_far(self) -> tuple[np.ndarray, float] | None:
        if self.state is SpeechState.INACTIVE:
            return None
        return self.audio.copy(), self.audio_start_s

    def cut_at(self, at_s: float, pause: tuple[float, float]) -> bool:
        self.cuts.append((at_s, pause))
        self.on_cut(at_s)
        return True


class RecordingSink:
    """Refuses interims of a segment whose final is out, as the stream does."""

    def __init__(self) -> None:
        self.interims: list[tuple[int, str]] = []
        self.finals: list[tuple[int, str]] = []
        self.pending: list[PendingFinal] = []
        self.transcripts: list[Transcript] = []
        self.discarded_s: list[float] = []

    def interim(self, segment_id: int, transcript: Transcript, audio_at: float) -> bool:
        if any(final_id == segment_id for final_id, _ in self.finals):
            return False
        self.interims.append((segment_id, transcript.text))
        return True

    async def final(self, pending: PendingFinal, transcript: Transcript) -> None:
        await asyncio.sleep(0)
        self.finals.append((pending.utterance.segment_id, transcript.text))
        self.pending.append(pending)
        self.transcripts.append(transcript)

    def discarded(self, model_s: float) -> None:
        self.discarded_s.append(model_s)


class Stream:
    """Moves the fake audio source and tells the pipeline, as the gateway's stream does."""

    def __init__(
        self,
        *,
        tuning: PolicyTuning = TUNING,
        interim_results: bool = True,
        respond: Respond | None = None,
        segment_id: int = 1,
    ) -> None:
        self.speech = FakeSpeech(segment_id)
        self.speech.on_cut = self._cut
        self.transcriber = FakeTranscriber(respond)
        self.sink = RecordingSink()
        self.pipeline = RecognitionPipeline(
            self.speech,
            self.transcriber,
            self.sink,
            tuning,
            interim_results=interim_results,
            word_time_offsets=False,
            prompt_previous=True,
        )
        self.task: asyncio.Task[None] | None = None
        self._speech_start_s = 0.0
        self._speech_end_s: float | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.pipeline.run())

    async def settle(self) -> None:
        """Lets the pipeline do all it can before the next event."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def finish(self) -> None:
        """Ends the input and expects run() to return."""
        assert self.task is not None
        self.pipeline.input_ended()
        await asyncio.wait_for(self.task, CALL_TIMEOUT_S)

    def _append(self, seconds: float) -> None:
        more = np.full(samples(seconds), 0.1, dtype=np.float32)
        self.speech.audio = np.concatenate([self.speech.audio, more])
        self.speech.speech_s += seconds
        self.speech.last_audio_at = time.monotonic()

    def speech_starts(self, seconds: float) -> None:
        """An utterance with PRE_SPEECH_S of audio before `seconds` of speech."""
        speech = self.speech
        speech.audio_start_s = speech.end_s
        speech.audio = np.zeros(samples(PRE_SPEECH_S), dtype=np.float32)
        speech.speech_s = 0.0
        speech.state = SpeechState.ACTIVE
        self._speech_start_s = speech.end_s
        self._speech_end_s = None
        self._append(seconds)
        self.pipeline.speech_started(
            SpeechStarted(speech.segment_id, self._speech_start_s), LANGUAGES
        )

    def speak(self, seconds: float) -> None:
        self.speech.state = SpeechState.ACTIVE
        self._speech_end_s = None
        self._append(seconds)
        self.pipeline.audio_arrived()

    def pause(self, silence_s: float = TRAILING_SILENCE_S) -> None:
        """Speech stops, and `silence_s` of silence follows (by default what a final keeps)."""
        self._speech_end_s = self.speech.end_s
        self.speech.state = SpeechState.SILENCE
        self.pipeline.speech_paused(SpeechEnded(self.speech.segment_id, self._speech_end_s))
        self._append(silence_s)
        self.pipeline.audio_arrived()

    def end_utterance(self, reason: EndReason = EndReason.SILENCE) -> UtteranceEnded:
        """Ends the utterance with all of its audio so far."""
        speech = self.speech
        event = UtteranceEnded(
            segment_id=speech.segment_id,
            audio=speech.audio.copy(),
            audio_start_s=speech.audio_start_s,
            speech_start_s=self._speech_start_s,
            speech_end_s=self._speech_end_s or speech.end_s,
            reason=reason,
        )
        speech.audio_start_s = speech.end_s
        speech.audio = np.zeros(0, dtype=np.float32)
        speech.speech_s = 0.0
        speech.state = SpeechState.INACTIVE
        speech.segment_id += 1
        self.pipeline.utterance_ended(event, time.monotonic())
        return event

    def _cut(self, at_s: float) -> None:
        """What the segmenter's cut_at does: the utterance ends at `at_s` and the speech
        after it goes on as the next one, with no pre-speech audio."""
        speech = self.speech
        self.pipeline.speech_paused(SpeechEnded(speech.segment_id, at_s))
        keep = samples(at_s - speech.audio_start_s)
        rest = speech.audio[keep:]
        speech.audio = speech.audio[:keep]
        self._speech_end_s = at_s
        self.end_utterance(EndReason.MAX_DURATION)
        speech.audio_start_s = at_s
        speech.audio = rest
        speech.speech_s = len(rest) / SAMPLE_RATE_HZ
        speech.state = SpeechState.ACTIVE
        self._speech_start_s = at_s
        self.pipeline.speech_started(SpeechStarted(speech.segment_id, at_s), LANGUAGES)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The pipeline's time, moved by the test; asyncio keeps the real one, so a wait the
    pipeline times out in real time only makes it look again."""
    fake = Clock()
    monkeypatch.setattr(pipeline_module, "time", fake)
    return fake


@pytest.mark.parametrize("resumed_during_speculation", [True, False])
def test_a_short_pause_keeps_the_interim_in_flight_and_the_speculation(
    resumed_during_speculation: bool,
) -> None:
    async def scenario() -> Stream:
        stream = Stream()
        stream.start()
        stream.speech_starts(1.0)
        interim = await stream.transcriber.next_call()
        assert interim.call.purpose is Purpose.INTERIM
        stream.pause()
        await stream.settle()
        assert not interim.answer.cancelled()
        interim.resolve("hello")
        speculation = await stream.transcriber.next_call()
        assert speculation.call.purpose is Purpose.SPECULATION
        assert stream.sink.interims == [(1, "hello")]
        if resumed_during_speculation:
            stream.speak(0.4)
        speculation.resolve("hello there", model_s=0.2)
        await stream.settle()
        if not resumed_during_speculation:
            assert stream.sink.interims == [(1, "hello")], "a speculation waits to be the final"
            stream.speak(0.4)
            await stream.settle()
        assert stream.sink.interims == [(1, "hello"), (1, "hello there")]
        stream.pause()
        stream.end_utterance()
        final = await stream.transcriber.next_call()
        assert final.call.purpose is Purpose.FINAL
        final.resolve("hello there friend")
        await stream.finish()
        return stream

    stream = asyncio.run(scenario())
    assert stream.sink.finals == [(1, "hello there friend")]
    assert stream.sink.discarded_s == []
    assert stream.transcriber.purposes == [Purpose.INTERIM, Purpose.SPECULATION, Purpose.FINAL]


def test_a_speculation_overtaken_by_more_speech_and_a_new_pause_is_an_interim() -> None:
    """Speech resumes and pauses again while the speculation runs: the pipeline never sees
    it active, yet the speculation can no longer be the final."""

    async def scenario() -> Stream:
        stream = Stream()
        stream.start()
        stream.speech_starts(1.0)
        (await stream.transcriber.next_call()).resolve("hello")
        stream.pause()
        speculation = await stream.transcriber.next_call()
        assert speculation.call.purpose is Purpose.SPECULATION
        stream.speak(0.4)
        stream.pause()
        speculation.resolve("hello there", model_s=0.2)
        again = await stream.transcriber.next_call()
        assert again.call.purpose is Purpose.SPECULATION
        assert stream.sink.interims == [(1, "hello"), (1, "hello there")]
        again.resolve("hello there friend")
        stream.end_utterance()
        await stream.finish()
        return stream

    stream = asyncio.run(scenario())
    assert stream.sink.finals == [(1, "hello there friend")]
    assert stream.sink.discarded_s == []


@pytest.mark.parametrize("reason", [EndReason.SILENCE, EndReason.FINALIZE])
@pytest.mark.parametrize("ended_during_speculation", [True, False])
def test_an_utterance_ending_with_the_speculated_audio_takes_the_speculation(
    ended_during_speculation: bool, reason: EndReason
) -> None:
    """However the utterance ended: a finalize during the pause ends it with the same audio."""

    async def scenario() -> tuple[Stream, UtteranceEnded]:
        stream = Stream(interim_results=False)
        stream.start()
        stream.speech_starts(1.0)
        await stream.settle()
        assert stream.transcriber.calls == []
        stream.pause()
        speculation = await stream.transcriber.next_call()
        assert speculation.call.purpose is Purpose.SPECULATION
        if ended_during_speculation:
            utterance = stream.end_utterance(reason)
        speculation.resolve("hello", model_s=0.2)
        await stream.settle()
        if not ended_during_speculation:
            assert stream.sink.finals == []
            utterance = stream.end_utterance(reason)
        await stream.finish()
        return stream, utterance

    stream, utterance = asyncio.run(scenario())
    assert len(utterance.audio) == samples(PRE_SPEECH_S + 1.0 + TRAILING_SILENCE_S)
    assert len(stream.transcriber.calls[0].audio) == len(utterance.audio)
    assert stream.transcriber.purposes == [Purpose.SPECULATION]
    assert stream.sink.finals == [(1, "hello")]
    assert stream.sink.pending[0].utterance is utterance
    assert stream.sink.discarded_s == []


def test_an_utterance_ending_with_other_audio_is_transcribed_afresh() -> None:
    async def scenario() -> tuple[Stream, UtteranceEnded]:
        stream = Stream(interim_results=False)
        stream.start()
        stream.speech_starts(1.0)
        stream.pause()
        (await stream.transcriber.next_call()).resolve("hello", model_s=0.2)
        await stream.settle()
        # Speech resumes and ends again within what the pipeline sees as one moment.
        stream.speak(0.5)
        stream.pause()
        utterance = stream.end_utterance()
        final = await stream.transcriber.next_call()
        assert final.call.purpose is Purpose.FINAL
        assert np.array_equal(final.call.audio, utterance.audio)
        final.resolve("hello again")
        await stream.finish()
        return stream, utterance

    stream, utterance = asyncio.run(scenario())
    assert len(utterance.audio) == samples(PRE_SPEECH_S + 1.0 + 0.5 + 2 * TRAILING_SILENCE_S)
    assert stream.sink.finals == [(1, "hello again")]
    assert stream.sink.discarded_s == [0.2]


def test_a_failed_speculation_leaves_the_final_to_a_final_call() -> None:
    async def scenario() -> Stream:
        stream = Stream(interim_results=False)
        stream.start()
        stream.speech_starts(1.0)
        stream.pause()
        (await stream.transcriber.next_call()).fail(OverloadedError("busy"))
        await stream.settle()
        stream.end_utterance()
        (await stream.transcriber.next_call()).resolve("hello")
        await stream.finish()
        return stream

    stream = asyncio.run(scenario())
    assert stream.transcriber.purposes == [Purpose.SPECULATION, Purpose.FINAL]
    assert stream.sink.finals == [(1, "hello")]


def test_finals_come_out_in_segment_order_behind_a_call_in_flight() -> None:
    async def scenario() -> Stream:
        stream = Stream()
        stream.start()
        stream.speech_starts(1.0)
        interim = await stream.transcriber.next_call()
        assert interim.call.purpose is Purpose.INTERIM
        stream.end_utterance(EndReason.FINALIZE)
        stream.speech_starts(0.5)
        stream.end_utterance(EndReason.FINALIZE)
        await stream.settle()
        assert len(stream.transcriber.calls) == 1, "one call at a time"
        interim.resolve("partial")
        first = await stream.transcriber.next_call()
        await stream.settle()
        assert len(stream.transcriber.calls) == 2, "one call at a time"
        assert (first.call.purpose, first.call.segment_id) == (Purpose.FINAL, 1)
        first.resolve("one")
        second = await stream.transcriber.next_call()
        assert (second.call.purpose, second.call.segment_id) == (Purpose.FINAL, 2)
        assert second.call.prompt == "one", "a final is conditioned on the one before"
        second.resolve("two")
        await stream.finish()
        return stream

    stream = asyncio.run(scenario())
    assert stream.sink.interims == [(1, "partial")]
    assert stream.sink.finals == [(1, "one"), (2, "two")]


def test_interims_stay_regular_through_long_speech(clock: Clock) -> None:
    tuning = dataclasses.replace(
        TUNING, interim_interval_s=0.2, first_interim_s=0.3, interim_duty_cycle=0.5
    )
    step_s, call_s = 0.02, 0.05
    # (clock, speech so far) at the start of each interim.
    started: list[tuple[float, float]] = []

    async def scenario() -> Stream:
        async def respond(call: Call) -> Transcript:
            started.append((clock.now, stream.speech.speech_s))
            clock.now += call_s
            await asyncio.sleep(0)
            return transcript(f"{len(call.audio)} samples")

        stream = Stream(tuning=tuning, respond=respond)
        stream.start()
        stream.speech_starts(step_s)
        for _ in range(150):
            await stream.settle()
            clock.now += step_s
            stream.speak(step_s)
        await stream.settle()
        await stream.finish()
        return stream

    stream = asyncio.run(scenario())
    assert set(stream.transcriber.purposes) == {Purpose.INTERIM}
    assert len(started) >= 12
    first_speech_s = started[0][1]
    assert tuning.first_interim_s <= first_speech_s < tuning.first_interim_s + step_s + 1e-9
    gaps = np.diff([at for at, _ in started])
    assert gaps.min() >= tuning.interim_interval_s - 1e-9
    assert gaps.max() <= tuning.interim_interval_s + step_s + 1e-9, "interims drift apart"
    assert len(stream.sink.interims) == len(started)


def test_a_pause_starts_no_interim_however_long_it_lasts(clock: Clock) -> None:
    tuning = dataclasses.replace(TUNING, interim_interval_s=0.2)

    async def respond(call: Call) -> Transcript:
        return transcript("hello")

    async def scenario() -> Stream:
        stream = Stream(tuning=tuning, respond=respond)
        stream.start()
        stream.speech_starts(1.0)
        await stream.settle()
        assert stream.transcriber.purposes == [Purpose.INTERIM]
        # Less silence than a final keeps: not even a speculation is due.
        stream.pause(silence_s=TRAILING_SILENCE_S / 2)
        for _ in range(10):
            clock.now += tuning.interim_interval_s
            stream.pipeline.audio_arrived()
            await stream.settle()
        assert stream.transcriber.purposes == [Purpose.INTERIM]
        stream.speak(0.2)
        await stream.settle()
        assert stream.transcriber.purposes == [Purpose.INTERIM, Purpose.INTERIM]
        await stream.finish()
        return stream

    asyncio.run(scenario())


def test_shed_interims_do_not_hold_up_the_final(clock: Clock) -> None:
    tuning = dataclasses.replace(TUNING, interim_interval_s=0.2, interim_duty_cycle=0.5)

    async def respond(call: Call) -> Transcript:
        await asyncio.sleep(0)
        if call.purpose is Purpose.INTERIM:
            raise OverloadedError("the speech-to-text service is overloaded")
        return transcript("the final")

    async def scenario() -> Stream:
        stream = Stream(tuning=tuning, respond=respond)
        stream.start()
        stream.speech_starts(0.2)
        for _ in range(50):
            await stream.settle()
            clock.now += 0.02
            stream.speak(0.02)
        stream.end_utterance(EndReason.FINALIZE)
        await stream.finish()
        return stream

    stream = asyncio.run(scenario())
    purposes = stream.transcriber.purposes
    assert purposes.count(Purpose.INTERIM) >= 4, "interims go on being tried"
    assert purposes[-1] is Purpose.FINAL
    assert stream.sink.interims == []
    assert stream.sink.finals == [(1, "the final")]


def test_a_failed_final_ends_the_run_naming_its_segment() -> None:
    async def scenario() -> Stream:
        stream = Stream(interim_results=False, segment_id=7)
        stream.start()
        stream.speech_starts(1.0)
        stream.end_utterance(EndReason.FINALIZE)
        (await stream.transcriber.next_call()).fail(BackendUnavailableError("no replica"))
        assert stream.task is not None
        with pytest.raises(BackendUnavailableError, match="segment 7 was not transcribed") as e:
            await asyncio.wait_for(stream.task, CALL_TIMEOUT_S)
        assert isinstance(e.value.__cause__, BackendUnavailableError)
        return stream

    stream = asyncio.run(scenario())
    assert stream.sink.finals == []


# Words of a probe of 4.5 s of speech from 0.5 s: a sentence ends at 2.6 s, 2.1 s into the
# speech (past MIN_PIECE_S) and before the last HOLDBACK_S of the audio, which ends at 5 s.
HELLO_THERE = (
    TimedWord(" Hello", 0.5, 0.9, 0.9),
    TimedWord(" there.", 1.0, 2.6, 0.9),
    TimedWord(" How", 2.9, 3.2, 0.9),
    TimedWord(" are", 3.3, 3.4, 0.9),
    TimedWord(" you", 3.5, 3.7, 0.9),
)


def test_a_phrase_end_found_by_a_probe_is_cut_and_its_words_are_the_final() -> None:
    tuning = dataclasses.replace(TUNING, max_utterance_s=3.0)

    async def scenario() -> Stream:
        stream = Stream(tuning=tuning)
        stream.start()
        stream.speech_starts(4.5)
        probe = await stream.transcriber.next_call()
        assert (probe.call.purpose, probe.call.words) == (Purpose.PHRASE_PROBE, True)
        assert probe.call.audio_end_s == pytest.approx(5.0)
        probe.resolve("Hello there. How are you", words=HELLO_THERE, audio_end_s=5.0)
        await stream.settle()
        await stream.finish()
        return stream

    stream = asyncio.run(scenario())
    [(at_s, pause)] = stream.speech.cuts
    assert at_s == pytest.approx(2.75)
    assert pause == (2.6, 2.9)
    assert stream.transcriber.purposes == [Purpose.PHRASE_PROBE]
    assert stream.sink.finals == [(1, "Hello there.")]
    assert stream.sink.transcripts[0].words == HELLO_THERE[:2]
    assert stream.sink.pending[0].utterance.reason is EndReason.MAX_DURATION
    assert len(stream.sink.pending[0].utterance.audio) == samples(2.75)
    assert stream.sink.interims == [(2, "How are you")], "the rest is the next interim"


def test_a_probe_without_a_phrase_end_is_an_interim_and_waits_for_more_audio() -> None:
    tuning = dataclasses.replace(TUNING, max_utterance_s=3.0)
    unpunctuated = tuple(
        TimedWord(word.word.rstrip("."), word.start_s, word.end_s, 0.9) for word in HELLO_THERE[:2]
    )

    async def scenario() -> Stream:
        stream = Stream(tuning=tuning)
        stream.start()
        stream.speech_starts(4.5)
        probe = await stream.transcriber.next_call()
        probe.resolve("Hello there", words=unpunctuated, audio_end_s=5.0)
        await stream.settle()
        assert stream.sink.interims == [(1, "Hello there")]
        stream.speak(PROBE_EVERY_S - 0.5)
        await stream.settle()
        assert len(stream.transcriber.calls) == 1
        stream.speak(0.5)
        again = await stream.transcriber.next_call()
        assert again.call.purpose is Purpose.PHRASE_PROBE
        again.resolve("Hello there", words=unpunctuated, audio_end_s=6.5)
        await stream.settle()
        await stream.finish()
        return stream

    stream = asyncio.run(scenario())
    assert stream.speech.cuts == []
    assert stream.sink.finals == []


def test_run_returns_once_every_final_is_out() -> None:
    async def scenario() -> Stream:
        stream = Stream(interim_results=False)
        stream.start()
        assert stream.task is not None
        for seconds in (1.0, 0.7):
            stream.speech_starts(seconds)
            stream.end_utterance(EndReason.FINALIZE)
        stream.pipeline.input_ended()
        for text in ("one", "two"):
            call = await stream.transcriber.next_call()
            await stream.settle()
            assert not stream.task.done()
            call.resolve(text)
        await asyncio.wait_for(stream.task, CALL_TIMEOUT_S)
        return stream

    stream = asyncio.run(scenario())
    assert stream.sink.finals == [(1, "one"), (2, "two")]


def test_run_returns_at_once_when_the_input_ends_in_silence() -> None:
    async def scenario() -> Stream:
        stream = Stream()
        stream.start()
        await stream.settle()
        await stream.finish()
        return stream

    stream = asyncio.run(scenario())
    assert stream.transcriber.calls == []


def test_a_pipeline_cancelled_as_it_wakes_up_ends() -> None:
    """The stream cancels its pipeline when the client goes; a cancellation that arrives
    in the same loop turn as new audio must still end it (asyncio.wait_for on Python 3.11
    swallowed it, and the pipeline task outlived its stream)."""

    async def scenario() -> None:
        stream = Stream()
        stream.start()
        stream.speech_starts(1.0)
        (await stream.transcriber.next_call()).resolve("hello")
        await stream.settle()
        # Now it sleeps until the next interim is due, or until more audio comes.
        assert stream.task is not None
        stream.pipeline.audio_arrived()
        stream.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(stream.task, CALL_TIMEOUT_S)

    asyncio.run(scenario())
