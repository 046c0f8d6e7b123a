"""Hallucination screening: each rule withholds invented text with its reason."""

import pytest

from dragoman.api.speech.v1 import speech_pb2
from dragoman.api.stt.v1 import stt_pb2
from dragoman.gateway.hallucination import HallucinationOptions, screen

Reason = speech_pb2.SuppressionReason
OPTIONS = HallucinationOptions()


def segment(text: str, **stats: float) -> stt_pb2.Segment:
    values = {"avg_logprob": -0.3, "no_speech_prob": 0.01, "compression_ratio": 1.2} | stats
    return stt_pb2.Segment(text=text, **values)


def test_confident_speech_is_kept() -> None:
    verdict = screen([segment(" Ask not what your country can do for you.")], OPTIONS)
    assert verdict.text == "Ask not what your country can do for you."
    assert verdict.suppression is None


@pytest.mark.parametrize(
    ("stats", "text", "reason"),
    [
        (
            {"no_speech_prob": 0.9, "avg_logprob": -1.2},
            "Okay.",
            Reason.SUPPRESSION_REASON_NO_SPEECH,
        ),
        ({"compression_ratio": 3.1}, "la la la la", Reason.SUPPRESSION_REASON_REPETITION),
        ({"avg_logprob": -1.8}, "Mumble.", Reason.SUPPRESSION_REASON_LOW_LOG_PROBABILITY),
        ({"no_speech_prob": 0.3}, "Thanks for watching!", Reason.SUPPRESSION_REASON_KNOWN_PHRASE),
    ],
)
def test_each_rule_suppresses_with_its_reason_and_evidence(stats, text, reason) -> None:
    verdict = screen([segment(text, **stats)], OPTIONS)
    assert verdict.text == ""
    assert verdict.suppression is not None
    assert verdict.suppression.reason == reason
    assert verdict.suppression.suppressed_transcript == text
    assert verdict.suppression.detail


def test_a_known_phrase_said_clearly_is_kept() -> None:
    verdict = screen([segment("Thank you.", no_speech_prob=0.01)], OPTIONS)
    assert verdict.text == "Thank you."


def test_only_the_invented_segment_is_dropped() -> None:
    verdict = screen(
        [
            segment("Press one to mute."),
            segment("Subtitles by the Amara.org community", no_speech_prob=0.5),
        ],
        OPTIONS,
    )
    assert verdict.text == "Press one to mute."
    assert verdict.suppression.reason == Reason.SUPPRESSION_REASON_KNOWN_PHRASE
