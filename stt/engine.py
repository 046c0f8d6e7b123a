"""One Whisper model on one device, decoding several utterances per call.

The gateway has already cut the audio into utterances with its own VAD, so each one is
decoded in a single window with no VAD and no conditioning on earlier text, and every
segment keeps its statistics: the gateway, not the engine, decides which output is a
hallucination and logs why.

Finals keep Whisper's timestamp tokens, as faster-whisper does by default: without them
Whisper drops a short phrase that ends an utterance ("... in the directory. Five, five."
lost "Five, five." in the continuous benchmark), and the text is the segments' texts.

The window is fitted to the audio (`stt.windows`), and requests that wait at the same
moment are decoded together: one encoder call and one generate call for the batch, which
on a GPU costs little more than one request. A batch shares what generate cannot vary
per request (`batch_key`); languages, prompts and audio lengths may differ.
"""

import inspect
import logging
import os
import zlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from dragoman.stt.models import ModelError, PreparedModel
from dragoman.stt.windows import FRAMES_PER_S, WindowPolicy, distrust, loop_start

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000

Task = Literal["transcribe", "translate"]
TASKS: tuple[Task, ...] = ("transcribe", "translate")
_DEFAULTS = inspect.signature(WhisperModel.transcribe).parameters
MAX_INITIAL_TIMESTAMP_S: float = _DEFAULTS["max_initial_timestamp"].default
"""The first segment starts this early in the window at the latest (faster-whisper's)."""
PREPEND_PUNCTUATIONS: str = _DEFAULTS["prepend_punctuations"].default
APPEND_PUNCTUATIONS: str = _DEFAULTS["append_punctuations"].default
"""Punctuation that word timings attach to the word beside it, as faster-whisper does."""


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
    #: Temperatures of the full-window retry, tried in turn while a decode fails the
    #: compression-ratio or log-probability checks; each is a whole extra decode.
    temperatures: tuple[float, ...] = (0.0, 0.4, 0.8)
    #: Word timings cost an alignment pass; they also say where a phrase ended.
    word_timestamps: bool = False
    #: Text said before this utterance; empty = none.
    initial_prompt: str = ""
    #: Decode again in the full 30 s window when the fitted one is not trusted; an
    #: interim, superseded within a second, takes what the fitted decode gave.
    retry_full_window: bool = True
    #: Keep Whisper's timestamp tokens: a final then keeps a short last phrase that Whisper
    #: drops without them; an interim, superseded within a second, is cheaper without.
    timestamps: bool = True


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
    #: Seconds of audio the encoder saw.
    window_s: float = 30.0
    #: Why the fitted decode was not used and the full window was ("" when it was used).
    full_window_reason: str = ""

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


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _text_of_segments(tokenizer: Tokenizer, tokens: list[int], keep: int | None = None) -> str:
    """The text of a decode with timestamps: its segments' texts joined by spaces (a
    segment after a timestamp may start without one), up to `keep` text tokens."""
    segments: list[list[int]] = [[]]
    kept = 0
    for token in tokens:
        if token >= tokenizer.eot:
            if segments[-1]:
                segments.append([])
            continue
        if keep is not None and kept >= keep:
            break
        segments[-1].append(token)
        kept += 1
    return " ".join(filter(None, (tokenizer.decode(each).strip() for each in segments)))


@dataclass
class _Item:
    """One request of a batch, as it goes through the decode."""

    audio: np.ndarray
    options: TranscribeOptions
    frames: int
    budget: int
    tokenizer: Tokenizer | None = None
    language_probability: float = 1.0
    prompt: tuple[int, ...] = ()

    @property
    def audio_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE_HZ

    @property
    def content_frames(self) -> int:
        return min(self.frames, round(self.audio_s * FRAMES_PER_S))


@dataclass
class _Decoded:
    """What generate gave for one item."""

    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()

    @classmethod
    def of(cls, item: _Item, result: ctranslate2.models.WhisperGenerationResult) -> "_Decoded":
        tokens = result.sequences_ids[0]
        # CTranslate2 returns the length-normalised score; faster-whisper's average
        # counts the end-of-text token too.
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        return cls(tokens, avg_logprob, result.no_speech_prob)

    def as_segment(self, audio_s: float) -> dict:
        """faster-whisper's segment dict, for its word alignment."""
        return {"start": 0.0, "end": audio_s, "tokens": self.tokens, "seek": 0}


class WhisperEngine:
    """A loaded faster-whisper model; `transcribe_batch` blocks and belongs in a worker thread.

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
        windows: WindowPolicy | None = None,
    ) -> None:
        self.name = model.name
        self.windows = windows or WindowPolicy()
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
        self._suppressed = get_suppressed_tokens(self._tokenizer("en", "transcribe"), [-1])
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

    def batch_key(self, audio_s: float, options: TranscribeOptions) -> Hashable:
        """What requests decoded in one call must share: the decoding parameters, the
        prompt's length (generate wants the start token at one position), and a window
        within a factor of two, so a short request is not padded to a long one's window.
        Word timings are aligned with one tokenizer per call, so requests that want them
        share their language, and one whose language is still to be detected goes alone."""
        prompt_tokens = len(self._encode(options.initial_prompt)) if options.initial_prompt else 0
        window_class = max(self.windows.frames(audio_s), 1).bit_length()
        return (
            options.beam_size,
            options.task,
            options.timestamps,
            options.word_timestamps,
            (options.language or object()) if options.word_timestamps else None,
            prompt_tokens,
            window_class,
        )

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcription:
        """Decodes float32 16 kHz mono samples in [-1, 1]."""
        return self.transcribe_batch([(audio, options)])[0]

    def transcribe_batch(
        self, requests: Sequence[tuple[np.ndarray, TranscribeOptions]]
    ) -> list[Transcription]:
        """Decodes requests that share a `batch_key` in one encoder and one generate call."""
        for _, options in requests:
            self.check(options)
        items = [
            _Item(
                audio,
                options,
                frames=self.windows.frames(len(audio) / SAMPLE_RATE_HZ),
                budget=self.windows.token_budget(len(audio) / SAMPLE_RATE_HZ),
            )
            for audio, options in requests
        ]
        window = max(item.frames for item in items)
        features = np.stack(
            [pad_or_trim(self._model.feature_extractor(item.audio), window) for item in items]
        )
        encoder_output = self._model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features))
        )
        self._prepare_prompts(items, encoder_output)
        first = items[0].options
        # CTranslate2 decodes at most min(max_length // 2, max_length - start_step) tokens,
        # start_step being the prompt's length less one, within the decoder's positions.
        start_step = len(items[0].prompt) - 1
        for item in items:
            item.budget = min(item.budget, self._model.max_length - start_step)
        longest = max(item.budget for item in items)
        results = self._model.model.generate(
            encoder_output,
            [list(item.prompt) for item in items],
            beam_size=first.beam_size,
            patience=1,
            length_penalty=1,
            max_length=max(2 * longest, start_step + longest),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed,
            max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP_S * FRAMES_PER_S / 2),
        )
        decoded = [_Decoded.of(item, result) for item, result in zip(items, results, strict=True)]
        if first.word_timestamps:
            self._add_words(items, decoded, encoder_output)
        return [
            self._transcription(item, each, window)
            for item, each in zip(items, decoded, strict=True)
        ]

    def _tokenizer(self, language: str, task: Task) -> Tokenizer:
        return Tokenizer(
            self._model.hf_tokenizer,
            not self.english_only,
            task=task,
            language=language or "en",
        )

    def _encode(self, text: str) -> list[int]:
        return self._tokenizer("en", "transcribe").encode(" " + text.strip())

    def _prepare_prompts(self, items: list[_Item], encoder_output: ctranslate2.StorageView) -> None:
        """Each item's tokenizer and prompt, detecting the language where none was given."""
        detected: list | None = None
        if not self.english_only and any(not item.options.language for item in items):
            detected = self._model.model.detect_language(encoder_output)
        for index, item in enumerate(items):
            language = item.options.language or "en"
            if detected is not None and not item.options.language:
                token, item.language_probability = detected[index][0]
                language = token[2:-2]
            item.tokenizer = self._tokenizer(language, item.options.task)
            previous = (
                self._encode(item.options.initial_prompt) if item.options.initial_prompt else []
            )
            item.prompt = tuple(
                self._model.get_prompt(
                    item.tokenizer, previous, without_timestamps=not item.options.timestamps
                )
            )

    def _add_words(
        self, items: list[_Item], decoded: list["_Decoded"], encoder_output: ctranslate2.StorageView
    ) -> None:
        """Word timings of every item in one alignment call (they share a language, see
        `batch_key`); a row that said nothing gets none, and costs less to align than taking
        it out of an encoder output that may live on a GPU."""
        if not any(each.tokens for each in decoded):
            return
        segments = [
            [each.as_segment(item.audio_s)] for item, each in zip(items, decoded, strict=True)
        ]
        tokenizer = items[0].tokenizer
        assert tokenizer is not None
        self._model.add_word_timestamps(
            segments,
            tokenizer,
            encoder_output,
            [item.content_frames for item in items],
            PREPEND_PUNCTUATIONS,
            APPEND_PUNCTUATIONS,
            last_speech_timestamp=0.0,
        )
        for each, [segment] in zip(decoded, segments, strict=True):
            each.words = tuple(
                Word(w["word"], w["start"], w["end"], w["probability"]) for w in segment["words"]
            )

    def _transcription(self, item: _Item, decoded: "_Decoded", window: int) -> Transcription:
        tokenizer = item.tokenizer
        assert tokenizer is not None
        text_tokens = [token for token in decoded.tokens if token < tokenizer.eot]
        text = _text_of_segments(tokenizer, decoded.tokens)
        reason = distrust(
            tokens=text_tokens,
            timestamp_tokens=len(decoded.tokens) - len(text_tokens),
            budget=item.budget,
            compression_ratio=_compression_ratio(text.strip()),
            avg_logprob=decoded.avg_logprob,
            no_speech_prob=decoded.no_speech_prob,
            run_on_s=max((w.end_s for w in decoded.words), default=0.0) - item.audio_s,
        )
        if reason and item.options.retry_full_window:
            logger.info(
                "decoding %.2f s again in the full window: in a %.1f s window %s",
                item.audio_s,
                window / FRAMES_PER_S,
                reason,
            )
            return self._full_window(item.audio, item.options, reason)
        looped_at = loop_start(text_tokens) if reason else None
        if looped_at is not None:
            text = _text_of_segments(tokenizer, decoded.tokens, looped_at)
        segment = Segment(
            text=text,
            start_s=0.0,
            end_s=item.audio_s,
            avg_logprob=decoded.avg_logprob,
            no_speech_prob=decoded.no_speech_prob,
            compression_ratio=_compression_ratio(text.strip()),
            words=decoded.words,
        )
        return Transcription(
            segments=(segment,) if text.strip() else (),
            language=tokenizer.language_code,
            language_probability=item.language_probability,
            window_s=window / FRAMES_PER_S,
            full_window_reason="",
        )

    def _full_window(
        self, audio: np.ndarray, options: TranscribeOptions, reason: str = ""
    ) -> Transcription:
        """faster-whisper's own decode: the 30 s window, with temperature fallback."""
        segments, info = self._model.transcribe(
            audio,
            language=options.language or None,
            task=options.task,
            beam_size=options.beam_size,
            best_of=options.beam_size,
            temperature=list(options.temperatures),
            without_timestamps=not options.timestamps,
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
            full_window_reason=reason,
        )
