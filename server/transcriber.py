"""What the recognition pipeline asks of the STT service, in plain terms.

The pipeline decides which audio is transcribed, when, and for what (`Purpose`); this
module turns such a call into a TranscribeRequest, screens the answer for hallucinations,
puts word timings in stream time, and hands back a `Transcript`. Nothing above it sees
the STT service's protobufs, so the pipeline is tested with a fake transcriber whose
delays the test controls.
"""

import enum
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dragoman.api.speech.v1 import speech_pb2
from dragoman.api.stt.v1 import stt_pb2
from dragoman.durations import seconds
from dragoman.gateway.audio import SAMPLE_RATE_HZ
from dragoman.gateway.hallucination import HallucinationOptions, screen
from dragoman.gateway.stt_client import SttClient, pcm16
from dragoman.gateway.utterance_spans import UtteranceSpans


class Purpose(enum.Enum):
    FINAL = "final"
    """The result users keep: beam search, retried while the STT service is overloaded."""
    SPECULATION = "speculation"
    """A final decoded before its endpoint, while the rest of the endpoint silence passes;
    if speech goes on instead, it serves as an interim."""
    PHRASE_PROBE = "phrase probe"
    """A final-quality decode of long speech with word timings, to cut where a phrase ended."""
    INTERIM = "interim"
    """Greedy, and given up at once when the STT service is overloaded."""

    @property
    def priority(self) -> int:
        if self is Purpose.INTERIM:
            return stt_pb2.PRIORITY_INTERIM
        return stt_pb2.PRIORITY_FINAL


@dataclass(frozen=True)
class Call:
    """Audio of one utterance to transcribe."""

    segment_id: int
    audio: np.ndarray
    """float32 at 16 kHz."""
    audio_start_s: float
    """Stream time of audio[0]."""
    purpose: Purpose
    language: str = ""
    """ISO 639-1 code, or empty to detect."""
    words: bool = False
    prompt: str = ""

    @property
    def audio_end_s(self) -> float:
        return self.audio_start_s + len(self.audio) / SAMPLE_RATE_HZ


@dataclass(frozen=True)
class TimedWord:
    word: str
    """With its leading space and punctuation, as Whisper writes it."""
    start_s: float
    end_s: float
    """Stream time."""
    probability: float


@dataclass(frozen=True)
class Transcript:
    """What the STT service said of a call's audio, once screened."""

    text: str
    """What survived the hallucination screen."""
    words: tuple[TimedWord, ...]
    """Of the text that survived, when asked for."""
    confidence: float
    language_code: str
    language_probability: float
    suppression: speech_pb2.Suppression | None
    audio_end_s: float
    """Stream time up to which the audio was transcribed."""
    model_s: float
    """This call's share of the model time of the batch it ran in."""


class Transcriber(Protocol):
    async def transcribe(self, call: Call) -> Transcript:
        """Raises StatusError when the STT service cannot transcribe the call."""
        ...

    async def to_english(self, call: Call) -> str:
        """Whisper's own speech-to-English translation of the call's audio."""
        ...


def _confidence(segments: tuple[stt_pb2.Segment, ...]) -> float:
    """The mean over segments of exp(avg_logprob): the confidence the public API documents
    (`StreamingRecognitionResult.confidence`), so any change here changes that contract."""
    if not segments:
        return 0.0
    return float(np.mean([math.exp(s.avg_logprob) for s in segments]))


class SttTranscriber:
    """Calls of one stream, to the STT service, as the stream's utterance spans' children."""

    def __init__(
        self,
        stt: SttClient,
        *,
        model: str,
        session_id: str,
        spans: UtteranceSpans,
        hallucination: HallucinationOptions,
        final_persist_s: float,
    ) -> None:
        self._stt = stt
        self._model = model
        self._session_id = session_id
        self._spans = spans
        self._hallucination = hallucination
        self._final_persist_s = final_persist_s

    def _request(self, call: Call, task: int) -> stt_pb2.TranscribeRequest:
        return stt_pb2.TranscribeRequest(
            audio_pcm16=pcm16(call.audio),
            model=self._model,
            language_code=call.language,
            task=task,
            priority=call.purpose.priority,
            word_timestamps=call.words,
            initial_prompt=call.prompt,
            session_id=self._session_id,
            segment_id=call.segment_id,
        )

    async def _call(self, call: Call, task: int) -> stt_pb2.TranscribeResponse:
        persist_s = self._final_persist_s if call.purpose is Purpose.FINAL else 0.0
        with self._spans.within(call.segment_id):
            return await self._stt.transcribe(self._request(call, task), persist_s=persist_s)

    async def transcribe(self, call: Call) -> Transcript:
        response = await self._call(call, stt_pb2.TASK_TRANSCRIBE)
        verdict = screen(response.segments, self._hallucination)
        return Transcript(
            text=verdict.text,
            words=tuple(
                TimedWord(
                    word.word,
                    call.audio_start_s + seconds(word.start_offset),
                    call.audio_start_s + seconds(word.end_offset),
                    word.probability,
                )
                for segment in verdict.kept
                for word in segment.words
            ),
            confidence=_confidence(verdict.kept),
            language_code=response.language_code,
            language_probability=response.language_probability,
            suppression=verdict.suppression,
            audio_end_s=call.audio_end_s,
            model_s=seconds(response.inference_duration) / max(response.batch_size, 1),
        )

    async def to_english(self, call: Call) -> str:
        response = await self._call(call, stt_pb2.TASK_TRANSLATE)
        return screen(response.segments, self._hallucination).text
