"""The per-stream speech state machine that cuts a continuous stream into utterances.

INACTIVE -> ACTIVE when enough confirmed speech is heard; ACTIVE -> SILENCE when it stops;
SILENCE -> ACTIVE if it resumes within the endpoint silence, else the utterance ends and the
machine is INACTIVE again. Long speech is cut into several utterances so that a final result
(and its translation) never waits on a speaker who does not pause. Past max_utterance_s the
stream asks Whisper where a phrase ended and cuts there (`cut_at`), because Whisper drops
a half-phrase at a hard cut; if that takes too long, FORCED_CUT_SLACK_S later the machine
cuts by itself at the quietest window near its limit. A rolling pre-speech buffer is
prepended to each utterance because VAD onsets are late by a few tens of ms and Whisper
transcribes the first word better with some lead-in.

All positions are stream sample indices at 16 kHz; times in events are those / 16000.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from dragoman.gateway.audio import SAMPLE_RATE_HZ
from dragoman.gateway.settings import VadDefaults
from dragoman.gateway.vad import SILERO_WINDOW_SAMPLES, VAD_DEFAULTS, DualVad, VadDecision
from dragoman.settings import declared_range

logger = logging.getLogger(__name__)

TRAILING_SILENCE_S = 0.3
"""Silence kept after the end of speech in an utterance's audio; the rest is trimmed.

Whisper drops a soft last word or phrase when the audio stops right after it: with 0.15 s
the streaming WER of tiny.en on the test clips rose from 0.042 to 0.054."""

CUT_SEARCH_S = 2.0
"""How far before its limit the machine looks for the quietest place to cut long speech."""

FORCED_CUT_SLACK_S = 5.0
"""How long speech may go on past max_utterance_s while the stream looks for a phrase end."""

MAX_UTTERANCE_AUDIO_S = 30.0
"""The most audio the STT service takes in one request: pre-speech, speech and trailing
silence of an utterance together."""

END_THRESHOLD_DROP = 0.15
"""Speech continues while Silero's probability stays above speech_threshold minus this.

The same hysteresis as Silero's own get_speech_timestamps: it keeps quiet word endings
inside the speech instead of flapping between ACTIVE and SILENCE.
"""


class SpeechState(enum.Enum):
    INACTIVE = "inactive"
    """No utterance; only the pre-speech buffer is kept."""
    ACTIVE = "active"
    """Speech is going on."""
    SILENCE = "silence"
    """Speech stopped; the utterance ends unless speech resumes within endpoint_silence_s."""


class EndReason(enum.Enum):
    SILENCE = "silence"
    """endpoint_silence_s of silence followed the speech."""
    MAX_DURATION = "max_duration"
    """The utterance reached max_utterance_s."""
    FINALIZE = "finalize"
    """The client asked for a final result now."""
    END_OF_STREAM = "end_of_stream"
    """The client's audio ended."""
    SHUTDOWN = "shutdown"
    """The server is draining and the utterance outlasted the grace period."""


@dataclass(frozen=True)
class SegmenterOptions:
    """Endpointing of one stream. Times in seconds."""

    endpoint_silence_s: float = VAD_DEFAULTS.endpoint_silence_s
    """Silence that ends an utterance."""
    pre_speech_s: float = VAD_DEFAULTS.pre_speech_s
    """Audio before the detected start of speech that is prepended to an utterance."""
    max_utterance_s: float = VAD_DEFAULTS.max_utterance_s
    """Speech longer than this is cut into several utterances, where a phrase ends."""
    min_speech_s: float = VAD_DEFAULTS.min_speech_s
    """Confirmed speech needed to start an utterance; shorter clicks and bursts are
    ignored. One non-speech window inside it is tolerated."""

    def __post_init__(self) -> None:
        """The ranges are the gateway settings' declarations (`VadDefaults`)."""
        for name in ("endpoint_silence_s", "pre_speech_s", "max_utterance_s", "min_speech_s"):
            value, valid = getattr(self, name), declared_range(VadDefaults, name)
            if value not in valid:
                raise ValueError(f"{name} {value} is out of range: valid values are {valid}")


@dataclass(frozen=True)
class StreamPosition:
    """A place in a stream: a 16 kHz stream sample, and the id of the utterance that starts
    there or next. A segmenter starts at one: a fresh stream at (0, 1), a session resumed
    on another gateway at its last checkpoint."""

    sample: int = 0
    segment_id: int = 1

    @property
    def offset_s(self) -> float:
        return self.sample / SAMPLE_RATE_HZ


STREAM_START = StreamPosition()


@dataclass(frozen=True)
class SpeechStarted:
    segment_id: int
    speech_start_s: float
    """Stream time where speech began."""


@dataclass(frozen=True)
class SpeechEnded:
    """Speech stopped; the utterance may still resume before endpoint_silence_s passes."""

    segment_id: int
    speech_end_s: float


@dataclass(frozen=True)
class UtteranceEnded:
    segment_id: int
    audio: np.ndarray
    """float32 at 16 kHz: pre-speech audio, speech, and at most TRAILING_SILENCE_S after it."""
    audio_start_s: float
    """Stream time of audio[0]."""
    speech_start_s: float
    speech_end_s: float
    reason: EndReason

    @property
    def start(self) -> StreamPosition:
        """Where a pipeline that recognizes this utterance again would start."""
        return StreamPosition(round(self.audio_start_s * SAMPLE_RATE_HZ), self.segment_id)


Event = SpeechStarted | SpeechEnded | UtteranceEnded


class _SampleBuffer:
    """Recent stream audio addressed by stream sample index.

    Appends fill spare capacity and old audio is dropped by moving an offset, so a push costs
    its own length rather than the buffer's, and capacity stays within twice the live audio.
    """

    def __init__(self, start_sample: int) -> None:
        self._data = np.zeros(SAMPLE_RATE_HZ, dtype=np.float32)
        self._offset = 0
        self._size = 0
        self.start_sample = start_sample

    def __len__(self) -> int:
        return self._size

    @property
    def end_sample(self) -> int:
        return self.start_sample + self._size

    def append(self, samples: np.ndarray) -> None:
        count = len(samples)
        if self._offset + self._size + count > len(self._data):
            capacity = max(len(self._data), 2 * (self._size + count))
            data = np.zeros(capacity, dtype=np.float32)
            data[: self._size] = self._data[self._offset : self._offset + self._size]
            self._data = data
            self._offset = 0
        end = self._offset + self._size
        self._data[end : end + count] = samples
        self._size += count

    def discard_before(self, sample: int) -> None:
        drop = min(max(sample - self.start_sample, 0), self._size)
        self._offset += drop
        self._size -= drop
        self.start_sample += drop

    def slice(self, start: int, end: int) -> np.ndarray:
        """A copy of the samples in [start, end), clipped to what is held."""
        first = max(start, self.start_sample) - self.start_sample + self._offset
        last = min(end, self.end_sample) - self.start_sample + self._offset
        return self._data[first:last].copy()


class Segmenter:
    """Turns one stream's audio into speech events and utterances."""

    def __init__(
        self, vad: DualVad, options: SegmenterOptions, start: StreamPosition = STREAM_START
    ) -> None:
        """`vad` must have its origin at `start.sample`."""
        self.options = options
        self._vad = vad
        self._start_threshold = vad.options.speech_threshold
        self._end_threshold = max(vad.options.speech_threshold - END_THRESHOLD_DROP, 0.01)
        self._endpoint_samples = round(options.endpoint_silence_s * SAMPLE_RATE_HZ)
        self._pre_speech_samples = round(options.pre_speech_s * SAMPLE_RATE_HZ)
        forced_s = min(
            options.max_utterance_s + FORCED_CUT_SLACK_S,
            MAX_UTTERANCE_AUDIO_S - options.pre_speech_s - TRAILING_SILENCE_S,
        )
        self._max_samples = round(forced_s * SAMPLE_RATE_HZ)
        self._min_speech_samples = round(options.min_speech_s * SAMPLE_RATE_HZ)
        self._trailing_samples = round(TRAILING_SILENCE_S * SAMPLE_RATE_HZ)
        self._cut_search_samples = round(min(CUT_SEARCH_S, forced_s / 2) * SAMPLE_RATE_HZ)
        self._audio = _SampleBuffer(start.sample)
        self._state = SpeechState.INACTIVE
        self._segment_id = start.segment_id
        # Audio before this sample went out with an earlier utterance and is never reused.
        self._floor = start.sample
        self._candidate_start: int | None = None
        self._candidate_speech = 0
        self._candidate_misses = 0
        self._audio_start = start.sample
        self._speech_start = start.sample
        self._speech_end = start.sample
        self._recent: deque[tuple[int, float]] = deque()

    @property
    def state(self) -> SpeechState:
        return self._state

    @property
    def segment_id(self) -> int:
        """The id of the utterance in progress, or of the next one when INACTIVE."""
        return self._segment_id

    @property
    def speech_s(self) -> float:
        """How long the utterance in progress has been speaking (0 when INACTIVE)."""
        if self._state is SpeechState.INACTIVE:
            return 0.0
        return (self._audio.end_sample - self._speech_start) / SAMPLE_RATE_HZ

    @property
    def utterance_start_sample(self) -> int:
        """Stream sample of the first audio of the utterance in progress."""
        return self._audio_start

    @property
    def kept_since_sample(self) -> int:
        """Stream sample of the oldest audio still held."""
        return self._audio.start_sample

    @property
    def stream_time_s(self) -> float:
        """Audio pushed so far, in seconds."""
        return self._audio.end_sample / SAMPLE_RATE_HZ

    @property
    def buffered_samples(self) -> int:
        """Audio held for the pre-speech buffer and the utterance in progress."""
        return len(self._audio)

    def push(self, samples: np.ndarray) -> list[Event]:
        """Feeds 16 kHz mono float32 audio; returns the events it caused, in stream order."""
        self._audio.append(samples)
        events: list[Event] = []
        # At most one window per VAD call, so Silero confirms every window from the one
        # that starts an utterance on, even when a large chunk is pushed.
        for start in range(0, len(samples), SILERO_WINDOW_SAMPLES):
            piece = samples[start : start + SILERO_WINDOW_SAMPLES]
            confirm_all = self._state is not SpeechState.INACTIVE
            for decision in self._vad.process(piece, confirm_all=confirm_all):
                events.extend(self._on_decision(decision))
        if self._state is SpeechState.INACTIVE:
            self._trim_pre_speech()
        return events

    def finalize(self, reason: EndReason) -> list[Event]:
        """Ends the utterance in progress now, with all audio pushed so far.

        Audio the VAD has not decided on yet (less than a window) is included, so at the end
        of the stream no speech is lost. Returns [] when INACTIVE.
        """
        if self._state is SpeechState.INACTIVE:
            return []
        now = self._audio.end_sample
        events: list[Event] = []
        if self._state is SpeechState.ACTIVE:
            self._speech_end = now
            events.append(SpeechEnded(self._segment_id, now / SAMPLE_RATE_HZ))
        audio_end = min(now, self._speech_end + self._trailing_samples)
        events.append(self._end_utterance(reason, audio_end))
        return events

    def utterance_so_far(self) -> tuple[np.ndarray, float] | None:
        """(audio, audio_start_s) of the utterance in progress, for interim results."""
        if self._state is SpeechState.INACTIVE:
            return None
        audio = self._audio.slice(self._audio_start, self._audio.end_sample)
        return audio, self._audio_start / SAMPLE_RATE_HZ

    def _on_decision(self, decision: VadDecision) -> list[Event]:
        if self._state is SpeechState.INACTIVE:
            return self._on_inactive(decision)
        events: list[Event] = []
        # None only for a window decided in the same VAD call that started the utterance.
        if decision.probability is not None:
            self._recent.append((decision.start_sample, decision.probability))
            events.extend(self._follow_speech(decision.start_sample, decision.probability))
        silence_samples = decision.end_sample - self._speech_end
        if self._state is SpeechState.SILENCE and silence_samples >= self._endpoint_samples:
            audio_end = self._speech_end + self._trailing_samples
            events.append(self._end_utterance(EndReason.SILENCE, audio_end))
            return events
        if decision.end_sample - self._speech_start >= self._max_samples:
            events.extend(self._on_max_duration())
        return events

    def _follow_speech(self, start_sample: int, probability: float) -> list[Event]:
        """ACTIVE <-> SILENCE, with hysteresis between the start and end thresholds."""
        if self._state is SpeechState.ACTIVE and probability < self._end_threshold:
            self._state = SpeechState.SILENCE
            self._speech_end = start_sample
            return [SpeechEnded(self._segment_id, start_sample / SAMPLE_RATE_HZ)]
        if self._state is SpeechState.SILENCE and probability >= self._start_threshold:
            self._state = SpeechState.ACTIVE
        return []

    def _on_inactive(self, decision: VadDecision) -> list[Event]:
        if decision.is_speech:
            if self._candidate_start is None:
                self._candidate_start = decision.start_sample
                self._candidate_speech = 0
                self._candidate_misses = 0
            self._candidate_speech += SILERO_WINDOW_SAMPLES
            if self._candidate_speech >= self._min_speech_samples:
                return [self._start_utterance(self._candidate_start)]
        elif self._candidate_start is not None:
            self._candidate_misses += 1
            if self._candidate_misses > 1:
                self._candidate_start = None
        return []

    def _start_utterance(self, speech_start: int) -> SpeechStarted:
        self._state = SpeechState.ACTIVE
        self._candidate_start = None
        self._speech_start = max(speech_start, self._floor)
        self._audio_start = max(
            self._speech_start - self._pre_speech_samples, self._audio.start_sample, self._floor
        )
        while self._recent and self._recent[0][0] < self._speech_start:
            self._recent.popleft()
        logger.debug("segment %d started at %d", self._segment_id, self._speech_start)
        return SpeechStarted(self._segment_id, self._speech_start / SAMPLE_RATE_HZ)

    def _end_utterance(self, reason: EndReason, audio_end: int) -> UtteranceEnded:
        audio_end = min(audio_end, self._audio.end_sample)
        event = UtteranceEnded(
            segment_id=self._segment_id,
            audio=self._audio.slice(self._audio_start, audio_end),
            audio_start_s=self._audio_start / SAMPLE_RATE_HZ,
            speech_start_s=self._speech_start / SAMPLE_RATE_HZ,
            speech_end_s=self._speech_end / SAMPLE_RATE_HZ,
            reason=reason,
        )
        logger.debug("segment %d ended (%s)", self._segment_id, reason.name)
        self._segment_id += 1
        self._floor = audio_end
        self._audio.discard_before(audio_end)
        self._state = SpeechState.INACTIVE
        return event

    def _on_max_duration(self) -> list[Event]:
        """Ends the utterance at max_utterance_s; speech still going on starts the next one."""
        if self._state is SpeechState.SILENCE:
            audio_end = self._speech_end + self._trailing_samples
            return [self._end_utterance(EndReason.MAX_DURATION, audio_end)]
        cut = self._quietest_cut()
        self._speech_end = cut
        events: list[Event] = [
            SpeechEnded(self._segment_id, cut / SAMPLE_RATE_HZ),
            self._end_utterance(EndReason.MAX_DURATION, cut),
        ]
        events.append(self._start_utterance(cut))
        return events

    def _quietest_cut(self) -> int:
        limit = self._speech_start + self._max_samples
        return self.quietest_between(limit - self._cut_search_samples, limit) or limit

    def quietest_between(self, first: int, last: int) -> int | None:
        """The middle of the VAD window of the utterance in progress with the lowest speech
        probability inside [first, last) stream samples, or None when none lies there."""
        candidates = [
            (probability, start)
            for start, probability in self._recent
            if max(first, self._speech_start) < start and start + SILERO_WINDOW_SAMPLES <= last
        ]
        if not candidates:
            return None
        _, start = min(candidates)
        return start + SILERO_WINDOW_SAMPLES // 2

    def cut_at(self, sample: int) -> list[Event]:
        """Ends the utterance in progress at stream sample `sample`, where a phrase ended,
        and goes on with the speech after it as the next utterance; [] when there is no
        utterance or `sample` is not inside its speech."""
        speech_end = self._audio.end_sample
        if self._state is SpeechState.SILENCE:
            speech_end = self._speech_end
        if self._state is SpeechState.INACTIVE or not self._speech_start < sample < speech_end:
            return []
        state = self._state
        self._speech_end = sample
        events: list[Event] = [
            SpeechEnded(self._segment_id, sample / SAMPLE_RATE_HZ),
            self._end_utterance(EndReason.MAX_DURATION, sample),
            self._start_utterance(sample),
        ]
        if state is SpeechState.SILENCE:
            self._state = SpeechState.SILENCE
            self._speech_end = speech_end
            events.append(SpeechEnded(self._segment_id, speech_end / SAMPLE_RATE_HZ))
        return events

    def _trim_pre_speech(self) -> None:
        anchor = self._vad.decided_samples
        if self._candidate_start is not None:
            anchor = self._candidate_start
        self._audio.discard_before(max(anchor - self._pre_speech_samples, self._floor))
