"""A stream's audio as utterances: decoder, dual VAD and segmenter, in stream time.

Everything the recognition pipeline knows of the audio comes from here: the state of the
utterance in progress, its audio so far, and the events (speech started, paused, an
utterance ended), which go to one handler in the order they happen, whether they come
from new audio, from the client (finalize, the end of the stream) or from a phrase cut.
"""

import time
from collections.abc import Callable

import numpy as np

from dragoman.gateway.audio import SAMPLE_RATE_HZ, make_decoder
from dragoman.gateway.request_options import StreamOptions
from dragoman.gateway.segmenter import (
    STREAM_START,
    EndReason,
    Event,
    Segmenter,
    SpeechState,
    StreamPosition,
)
from dragoman.gateway.vad import DualVad, SileroModel


class AudioSource:
    """Raises AudioFormatError for audio that cannot be decoded."""

    def __init__(
        self,
        options: StreamOptions,
        vad_model: SileroModel,
        on_events: Callable[[list[Event]], None],
        on_audio: Callable[[float], None] = lambda seconds: None,
        start: StreamPosition = STREAM_START,
    ) -> None:
        """`on_audio` counts the seconds of audio each chunk carried; `start` is where in
        the stream the first chunk is."""
        self._decoder = make_decoder(options.encoding, options.sample_rate_hz, options.channels)
        self._segmenter = Segmenter(
            DualVad(vad_model, options.vad, origin=start.sample), options.segmenter, start
        )
        self._on_events = on_events
        self._on_audio = on_audio
        self.audio_seconds = 0.0
        self.last_audio_at = time.monotonic()
        """Monotonic time the last chunk of audio arrived."""

    @property
    def state(self) -> SpeechState:
        return self._segmenter.state

    @property
    def segment_id(self) -> int:
        return self._segmenter.segment_id

    @property
    def speech_s(self) -> float:
        return self._segmenter.speech_s

    @property
    def stream_time_s(self) -> float:
        """Audio pushed so far, in seconds from the start of the stream."""
        return self._segmenter.stream_time_s

    @property
    def kept_since(self) -> StreamPosition:
        """The oldest audio the segmenter still holds (the utterance in progress, or the
        pre-speech buffer) and the id of the next utterance: where a rebuilt pipeline
        would start, if no final were pending."""
        return StreamPosition(self._segmenter.kept_since_sample, self._segmenter.segment_id)

    def utterance_so_far(self) -> tuple[np.ndarray, float] | None:
        """(audio, stream time of its start) of the utterance in progress."""
        return self._segmenter.utterance_so_far()

    def push(self, chunk: bytes) -> None:
        samples = self._decoder.decode(chunk)
        self.last_audio_at = time.monotonic()
        self._push(samples)

    def _push(self, samples: np.ndarray) -> None:
        seconds = len(samples) / SAMPLE_RATE_HZ
        self.audio_seconds += seconds
        self._on_audio(seconds)
        self._on_events(self._segmenter.push(samples))

    def end(self) -> None:
        """The input ended: what the decoder still holds is pushed, the utterance ended."""
        self._push(self._decoder.flush())
        self.finalize(EndReason.END_OF_STREAM)

    def finalize(self, reason: EndReason) -> None:
        self._on_events(self._segmenter.finalize(reason))

    def cut_at(self, at_s: float, pause: tuple[float, float]) -> bool:
        """Cuts the utterance in progress at stream time `at_s`, moved to the quietest VAD
        window of `pause` (stream times) when there is one; False if it cannot be cut
        there (it ended meanwhile)."""
        first, last = (round(t * SAMPLE_RATE_HZ) for t in pause)
        sample = self._segmenter.quietest_between(first, last) or round(at_s * SAMPLE_RATE_HZ)
        events = self._segmenter.cut_at(sample)
        self._on_events(events)
        return bool(events)

    def close(self) -> None:
        self._decoder.close()
