"""Withholds text that Whisper invents on silence and noise, and says why.

Whisper is trained on subtitles, so on non-speech it tends to emit credits and sign-offs,
or to loop on a phrase. The same statistics Whisper itself uses to reject a decode
(no-speech probability, mean log-probability, gzip compression ratio) decide here, plus a
list of known phrases; each suppression carries its reason and the evidence.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dragoman.api.speech.v1 import speech_pb2
from dragoman.api.stt.v1 import stt_pb2

Reason = speech_pb2.SuppressionReason

KNOWN_PHRASES: frozenset[str] = frozenset(
    {
        "thank you",
        "thank you very much",
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "thanks for watching and see you next time",
        "please subscribe",
        "please like and subscribe",
        "subtitles by the amaraorg community",
        "subtitles by",
        "bye",
        "you",
        "so",
        "oh",
        "hmm",
    }
)


def normalize(text: str) -> str:
    """Lower-cases and drops punctuation so that phrase matching ignores formatting."""
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


@dataclass(frozen=True)
class HallucinationOptions:
    """Thresholds; the defaults are Whisper's own, with a stricter log-probability floor."""

    no_speech_threshold: float = 0.6
    """Suppress when the no-speech probability is above this and confidence is low."""
    no_speech_log_prob: float = -1.0
    """With a high no-speech probability, suppress when the mean log-probability is below."""
    log_prob_threshold: float = -1.5
    """Suppress any text whose mean token log-probability is below this."""
    compression_ratio_threshold: float = 2.4
    """Suppress text whose gzip compression ratio is above this (it loops)."""
    known_phrase_no_speech: float = 0.15
    """A known phrase is suppressed only when its no-speech probability is at least this."""


@dataclass(frozen=True)
class Verdict:
    """What survives of a transcription and what was withheld."""

    text: str
    kept: tuple[stt_pb2.Segment, ...]
    suppression: speech_pb2.Suppression | None


def _judge(segment: stt_pb2.Segment, options: HallucinationOptions) -> tuple[int, str] | None:
    if (
        segment.no_speech_prob > options.no_speech_threshold
        and segment.avg_logprob < options.no_speech_log_prob
    ):
        return (
            Reason.SUPPRESSION_REASON_NO_SPEECH,
            f"no_speech_prob {segment.no_speech_prob:.2f} > {options.no_speech_threshold:.2f} "
            f"and avg_logprob {segment.avg_logprob:.2f} < {options.no_speech_log_prob:.2f}",
        )
    if segment.compression_ratio > options.compression_ratio_threshold:
        return (
            Reason.SUPPRESSION_REASON_REPETITION,
            f"compression_ratio {segment.compression_ratio:.2f} > "
            f"{options.compression_ratio_threshold:.2f}",
        )
    if segment.avg_logprob < options.log_prob_threshold:
        return (
            Reason.SUPPRESSION_REASON_LOW_LOG_PROBABILITY,
            f"avg_logprob {segment.avg_logprob:.2f} < {options.log_prob_threshold:.2f}",
        )
    if (
        normalize(segment.text) in KNOWN_PHRASES
        and segment.no_speech_prob >= options.known_phrase_no_speech
    ):
        return (
            Reason.SUPPRESSION_REASON_KNOWN_PHRASE,
            f"known phrase with no_speech_prob {segment.no_speech_prob:.2f}",
        )
    return None


def screen(segments: Sequence[stt_pb2.Segment], options: HallucinationOptions) -> Verdict:
    """Keeps the segments that look like speech; reports the first suppression, if any."""
    kept: list[stt_pb2.Segment] = []
    withheld: list[str] = []
    first: tuple[int, str] | None = None
    for segment in segments:
        if not segment.text.strip():
            continue
        verdict = _judge(segment, options)
        if verdict is None:
            kept.append(segment)
        else:
            withheld.append(segment.text.strip())
            first = first or verdict
    suppression = None
    if first is not None:
        suppression = speech_pb2.Suppression(
            reason=first[0], detail=first[1], suppressed_transcript=" ".join(withheld)
        )
    text = " ".join(segment.text.strip() for segment in kept)
    return Verdict(text=text, kept=tuple(kept), suppression=suppression)
