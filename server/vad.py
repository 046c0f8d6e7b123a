"""Dual voice activity detection: webrtcvad as a cheap gate, Silero VAD v6 to confirm.

webrtcvad costs microseconds per frame but fires on many noises; Silero is far more accurate
but costs a neural-network call per 32 ms. Running Silero only where webrtcvad hears
something keeps silent streams nearly free, which is what lets one gateway hold many idle
streams. Silero runs on onnxruntime from the ONNX file faster-whisper ships, so the gateway
needs no torch and no network to load it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections import deque
from dataclasses import dataclass

import numpy as np
import onnxruntime
import webrtcvad

from dragoman.gateway.audio import SAMPLE_RATE_HZ
from dragoman.gateway.settings import VadDefaults
from dragoman.settings import declared_range

logger = logging.getLogger(__name__)

SILERO_WINDOW_SAMPLES = 512
"""Silero's window at 16 kHz: 32 ms."""

SILERO_CONTEXT_SAMPLES = 64
"""Samples of the previous window that Silero v6 sees in front of each new one."""

SILERO_STATE_RESET_SAMPLES = SAMPLE_RATE_HZ
"""After this long (1 s) without running Silero its recurrent state describes stale audio."""

_SILERO_STATE_SHAPE = (1, 1, 128)
_WEBRTC_FRAME_MS_CHOICES = (10, 20, 30)
_INT16_MAX = 32767
VAD_DEFAULTS = VadDefaults()


@dataclass(frozen=True)
class VadOptions:
    """Tuning of the dual VAD."""

    aggressiveness: int = VAD_DEFAULTS.vad_aggressiveness
    """webrtcvad mode, 0 (lets most through) to 3 (most aggressive filtering of non-speech)."""
    webrtc_frame_ms: int = 30
    """webrtcvad frame length in ms: 10, 20 or 30."""
    speech_threshold: float = VAD_DEFAULTS.vad_speech_threshold
    """Silero speech probability at or above which a window is speech."""

    def __post_init__(self) -> None:
        """The ranges are the gateway settings' declarations (`VadDefaults`)."""
        for name, value in (
            ("vad_aggressiveness", self.aggressiveness),
            ("vad_speech_threshold", self.speech_threshold),
        ):
            valid = declared_range(VadDefaults, name)
            if value not in valid:
                raise ValueError(f"{name} {value} is out of range: valid values are {valid}")
        if self.webrtc_frame_ms not in _WEBRTC_FRAME_MS_CHOICES:
            raise ValueError(
                f"webrtc_frame_ms {self.webrtc_frame_ms} is invalid: valid values are 10, 20, 30"
            )


def _faster_whisper_assets() -> str:
    """faster-whisper's assets folder, found without importing the package, which would
    load CTranslate2 and the tokenizer into a gateway that never runs Whisper."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("faster-whisper, which ships the Silero VAD model, is not installed")
    return os.path.join(spec.submodule_search_locations[0], "assets")


class SileroModel:
    """The Silero VAD v6 network, loaded once and shared by every stream.

    onnxruntime's `run` is thread-safe, so one session serves all streams; each stream keeps
    its own recurrent state in a `SileroStream`. The session is single-threaded like
    faster-whisper's: one window is too small to gain from intra-op threads, and streams
    already run in parallel.
    """

    def __init__(self, path: str | None = None) -> None:
        """path: the ONNX file; None for the silero_vad_v6.onnx that faster-whisper ships."""
        self.path = path or os.path.join(_faster_whisper_assets(), "silero_vad_v6.onnx")
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(
            self.path, providers=["CPUExecutionProvider"], sess_options=options
        )
        logger.info("loaded Silero VAD from %s", self.path)

    def new_stream(self) -> SileroStream:
        return SileroStream(self)


class SileroStream:
    """One stream's Silero state: the LSTM's h and c and the last window's tail as context."""

    def __init__(self, model: SileroModel) -> None:
        self._session = model.session
        self.reset()

    def reset(self) -> None:
        """Forgets the audio heard so far, as at the start of a stream."""
        self._h = np.zeros(_SILERO_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_SILERO_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(SILERO_CONTEXT_SAMPLES, dtype=np.float32)

    def probability(self, window: np.ndarray, context: np.ndarray | None = None) -> float:
        """Speech probability of one 512-sample window following the previous one.

        context: the 64 samples just before `window`, when the previous call was not for the
        window just before this one; by default the tail of the previous call's window.
        """
        if window.shape != (SILERO_WINDOW_SAMPLES,):
            raise ValueError(
                f"Silero needs windows of exactly {SILERO_WINDOW_SAMPLES} samples, "
                f"got shape {window.shape}"
            )
        if context is not None:
            self._context = np.asarray(context, dtype=np.float32)
        model_input = np.concatenate([self._context, window.astype(np.float32, copy=False)])
        probs, self._h, self._c = self._session.run(
            None, {"input": model_input[np.newaxis, :], "h": self._h, "c": self._c}
        )
        self._context = model_input[-SILERO_CONTEXT_SAMPLES:]
        return float(probs[0])


@dataclass(frozen=True)
class VadDecision:
    """The verdict on one 512-sample window of the stream."""

    start_sample: int
    """Stream sample index (16 kHz) of the window's first sample."""
    end_sample: int
    """Stream sample index one past the window's last sample."""
    gate_open: bool
    """webrtcvad heard speech in a frame overlapping this window."""
    probability: float | None
    """Silero speech probability; None when Silero was not run on this window."""
    is_speech: bool
    """gate_open and probability >= the speech threshold."""


class DualVad:
    """Per-stream dual VAD over a continuous 16 kHz stream.

    webrtcvad frames and Silero windows have different lengths, so each runs on its own grid
    of stream samples; a window is decided once every webrtcvad frame overlapping it has been
    heard, which delays decisions by at most one frame.
    """

    def __init__(self, model: SileroModel, options: VadOptions, *, origin: int = 0) -> None:
        """`origin`: the stream sample of the first audio it gets (a pipeline rebuilt from
        a resumed session's checkpoint); its grids start there."""
        self.options = options
        self._origin = origin
        self._silero = model.new_stream()
        self._webrtc = webrtcvad.Vad(options.aggressiveness)
        self._frame_samples = SAMPLE_RATE_HZ * options.webrtc_frame_ms // 1000
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self._frames_end = 0
        self._frame_flags: deque[bool] = deque()
        self._frame_flags_start = 0
        self._next_window = 0
        self._silero_end: int | None = None

    @property
    def decided_samples(self) -> int:
        """Stream samples covered by decisions so far; later samples are still buffered."""
        return self._origin + self._next_window

    def process(self, samples: np.ndarray, *, confirm_all: bool = False) -> list[VadDecision]:
        """Buffers 16 kHz float32 audio; returns one decision per newly complete window.

        confirm_all runs Silero on every window, gate open or not: while an utterance is
        active the segmenter needs the probability of each window to place the end of speech
        and the quietest cut point precisely.
        """
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
        self._run_webrtc()
        decisions = []
        while self._next_window + SILERO_WINDOW_SAMPLES <= self._frames_end:
            decisions.append(self._decide(self._next_window, confirm_all))
            self._next_window += SILERO_WINDOW_SAMPLES
        self._drop_consumed()
        return decisions

    def _run_webrtc(self) -> None:
        buffer_end = self._buffer_start + len(self._buffer)
        while self._frames_end + self._frame_samples <= buffer_end:
            frame = self._slice(self._frames_end, self._frames_end + self._frame_samples)
            pcm = (np.clip(frame, -1.0, 1.0) * _INT16_MAX).astype("<i2").tobytes()
            self._frame_flags.append(self._webrtc.is_speech(pcm, SAMPLE_RATE_HZ))
            self._frames_end += self._frame_samples

    def _decide(self, start: int, confirm_all: bool) -> VadDecision:
        end = start + SILERO_WINDOW_SAMPLES
        first_frame = start // self._frame_samples
        last_frame = (end - 1) // self._frame_samples
        gate_open = any(
            self._frame_flags[index - self._frame_flags_start]
            for index in range(first_frame, last_frame + 1)
        )
        probability = None
        if gate_open or confirm_all:
            probability = self._silero_probability(start)
        is_speech = probability is not None and probability >= self.options.speech_threshold
        origin = self._origin
        return VadDecision(
            origin + start, origin + end, gate_open, probability, gate_open and is_speech
        )

    def _silero_probability(self, start: int) -> float:
        end = start + SILERO_WINDOW_SAMPLES
        context = None
        if self._silero_end != start:
            # Skipped windows: give Silero the audio really in front of this one, and drop a
            # recurrent state that no longer describes the recent audio.
            if self._silero_end is None or start - self._silero_end > SILERO_STATE_RESET_SAMPLES:
                self._silero.reset()
            context = self._slice(max(0, start - SILERO_CONTEXT_SAMPLES), start)
            context = np.pad(context, (SILERO_CONTEXT_SAMPLES - len(context), 0))
        self._silero_end = end
        return self._silero.probability(self._slice(start, end), context)

    def _drop_consumed(self) -> None:
        keep_from = max(0, self._next_window - SILERO_CONTEXT_SAMPLES)
        self._buffer = self._buffer[keep_from - self._buffer_start :]
        self._buffer_start = keep_from
        first_needed_frame = self._next_window // self._frame_samples
        while self._frame_flags_start < first_needed_frame and self._frame_flags:
            self._frame_flags.popleft()
            self._frame_flags_start += 1

    def _slice(self, start: int, end: int) -> np.ndarray:
        return self._buffer[start - self._buffer_start : end - self._buffer_start]
