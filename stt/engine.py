"""One Whisper model on one device, transcribing one utterance per call.

The gateway has already cut the audio into utterances with its own VAD, so the engine
decodes each one in a single pass with no VAD and no conditioning on earlier text, and
keeps every segment with its statistics: the gateway, not the engine, decides which
output is a hallucination and logs why.
"""

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel

from stt.models import ModelError, PreparedModel

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000

Task = Literal["transcribe", "translate"]
TASKS: tuple[Task, ...] = ("transcribe", "translate")


class UnsupportedOptionError(ValueError):
    """The model cannot honour a request option (language, task); the message lists choices."""


@dataclass(frozen=True)
class TranscribeOptions:
    """How to decode one utterance."""

    #: ISO 639-1 code; empty = detect (multilingual models) or English (English-only ones).
    language: str = ""
    task: Task = "transcribe"
    #: Beam width; 1 = greedy, the cheapest.
    beam_size: int = 5
    #: Temperatures tried in turn while a decode fails the compression-ratio or
    #: log-probability checks; each fallback is a whole extra decode, so the list is short.
    temperatures: tuple[float, ...] = (0.0, 0.4, 0.8)
    #: Word timings cost an alignment pass; without them the decoder skips timestamp tokens.
    word_timestamps: bool = False
    #: Text said before this utterance; empty = none.
    initial_prompt: str = ""


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float
    end_s: float
    #: 0.0-1.0
    probability: float


@dataclass(frozen=True)
class Segment:
    text: str
    start_s: float
    end_s: float
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    #: Empty unless word timestamps were requested.
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcription:
    segments: tuple[Segment, ...]
    #: ISO 639-1 code, given or detected.
    language: str
    #: 1.0 when the language was given.
    language_probability: float

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments).strip()


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    """Turns "auto" into CUDA float16 when a GPU is visible, else CPU int8."""
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


class WhisperEngine:
    """A loaded faster-whisper model; `transcribe` blocks and belongs in a worker thread.

    `cpu_threads=0` means every core this process may use: CTranslate2's own default (4)
    oversubscribes small machines and leaves big ones idle.
    """

    def __init__(
        self,
        model: PreparedModel,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
    ) -> None:
        self.name = model.name
        device, compute_type = resolve_device(device, compute_type)
        try:
            self._model = WhisperModel(
                str(model.directory),
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads or len(os.sched_getaffinity(0)),
            )
        except (RuntimeError, ValueError) as error:
            raise ModelError(
                f"cannot load model {model.name!r} from {model.directory} on {device} with "
                f"compute type {compute_type}: {error}; supported compute types on {device}: "
                f"{', '.join(sorted(ctranslate2.get_supported_compute_types(device)))}"
            ) from error
        #: Where it runs and with which weights' type, as CTranslate2 settled them.
        self.device: str = self._model.model.device
        self.compute_type: str = self._model.model.compute_type
        self.english_only: bool = not self._model.model.is_multilingual
        self.languages: Sequence[str] = tuple(self._model.supported_languages)
        logger.info(
            "loaded model %s on %s (%s, %s)",
            self.name,
            self.device,
            self.compute_type,
            "English only" if self.english_only else "multilingual",
        )

    def check(self, options: TranscribeOptions) -> None:
        """Rejects options the model cannot honour, before the request waits in a queue."""
        if options.task not in TASKS:
            raise UnsupportedOptionError(
                f"unknown task {options.task!r}; expected one of: {', '.join(TASKS)}"
            )
        if options.task == "translate" and self.english_only:
            raise UnsupportedOptionError(
                f"model {self.name!r} is English-only and cannot translate; use task "
                "transcribe, or a multilingual model such as 'base'"
            )
        if options.language and options.language not in self.languages:
            raise UnsupportedOptionError(
                f"model {self.name!r} does not know language {options.language!r}; expected "
                f"one of: {', '.join(self.languages)}, or empty to detect"
            )

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcription:
        """Decodes float32 16 kHz mono samples in [-1, 1]."""
        self.check(options)
        segments, info = self._model.transcribe(
            audio,
            language=options.language or None,
            task=options.task,
            beam_size=options.beam_size,
            best_of=options.beam_size,
            temperature=list(options.temperatures),
            without_timestamps=not options.word_timestamps,
            word_timestamps=options.word_timestamps,
            initial_prompt=options.initial_prompt or None,
            condition_on_previous_text=False,
            no_speech_threshold=None,
            vad_filter=False,
        )
        return Transcription(
            segments=tuple(
                Segment(
                    text=segment.text,
                    start_s=segment.start,
                    end_s=segment.end,
                    avg_logprob=segment.avg_logprob,
                    no_speech_prob=segment.no_speech_prob,
                    compression_ratio=segment.compression_ratio,
                    words=tuple(
                        Word(w.word, w.start, w.end, w.probability) for w in segment.words or ()
                    ),
                )
                for segment in segments
            ),
            language=info.language,
            language_probability=info.language_probability,
        )
