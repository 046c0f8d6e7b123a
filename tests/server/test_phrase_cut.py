"""Where long speech is cut: after the last phrase that has certainly ended."""

import pytest

from dragoman.gateway.phrase_cut import HOLDBACK_S, MIN_PIECE_S, PhraseCut, choose
from dragoman.gateway.transcriber import TimedWord

SPEECH_START_S = 100.0
"""Stream time the speech started: cuts are in stream time, not utterance time."""


def timed(*spoken: tuple[str, float, float]) -> tuple[TimedWord, ...]:
    """Words at seconds after the speech start, as Whisper writes them."""
    return tuple(
        TimedWord(word, SPEECH_START_S + start_s, SPEECH_START_S + end_s, 0.9)
        for word, start_s, end_s in spoken
    )


def cut(words: tuple[TimedWord, ...], audio_end_s: float) -> PhraseCut | None:
    return choose(words, speech_start_s=SPEECH_START_S, audio_end_s=SPEECH_START_S + audio_end_s)


def last_committed(phrase_cut: PhraseCut | None) -> str:
    assert phrase_cut is not None
    return phrase_cut.committed[-1].word.strip()


MIXED = timed(
    (" Press", 0.0, 0.4),
    (" one", 0.45, 0.9),
    (" for", 1.5, 1.8),  # a long pause, but too early for a piece
    (" sales", 1.85, 2.4),
    (" and", 2.45, 2.7),
    (" support.", 2.75, 3.3),
    (" Press", 3.35, 3.7),
    (" two,", 3.75, 4.1),
    (" for", 4.15, 4.4),
    (" billing", 4.45, 5.0),
    (" or", 5.6, 5.8),  # the longest pause in reach
    (" stay", 5.85, 6.1),
    (" on", 6.15, 6.3),
    (" the", 6.35, 6.5),
    (" line.", 6.55, 7.0),
)
"""A sentence end, then a clause end, then the longest pause."""


def test_a_sentence_end_beats_a_later_clause_end_and_a_later_pause() -> None:
    assert last_committed(cut(MIXED, audio_end_s=7.2)) == "support."


def test_a_clause_end_beats_a_later_longer_pause() -> None:
    without_sentences = tuple(
        TimedWord(w.word.replace(".", ""), w.start_s, w.end_s, w.probability) for w in MIXED
    )

    assert last_committed(cut(without_sentences, audio_end_s=7.2)) == "two,"


def test_without_punctuation_a_long_pause_is_a_cut() -> None:
    bare = tuple(TimedWord(w.word.strip(".,"), w.start_s, w.end_s, w.probability) for w in MIXED)

    assert last_committed(cut(bare, audio_end_s=7.2)) == "billing"


def test_the_latest_of_several_sentence_ends_wins() -> None:
    words = timed(
        (" Hello.", 0.0, 2.1),
        (" Press", 2.15, 2.5),
        (" one.", 2.55, 3.0),
        (" Press", 3.05, 3.4),
        (" two.", 3.45, 3.9),
        (" Press", 3.95, 4.3),
        (" three", 4.35, 4.8),
    )

    assert last_committed(cut(words, audio_end_s=10.0)) == "two."


def test_the_longest_pause_wins_over_a_later_shorter_one() -> None:
    words = timed(
        (" so", 0.0, 2.0),
        (" then", 2.5, 2.8),  # 0.5 s before
        (" we", 3.0, 3.2),  # 0.2 s before
        (" went", 3.25, 3.5),
    )

    assert last_committed(cut(words, audio_end_s=10.0)) == "so"


def test_of_equal_pauses_the_latest_wins() -> None:
    words = timed(
        (" so", 0.0, 2.0),
        (" then", 2.25, 2.5),
        (" we", 2.75, 3.0),
        (" went", 3.0, 3.5),
    )

    assert last_committed(cut(words, audio_end_s=10.0)) == "then"


def test_words_near_the_end_of_the_audio_are_never_committed() -> None:
    """The last words of a decode may be incomplete, and the next decode revises them."""
    words = timed(
        (" Press", 0.0, 1.0),
        (" one.", 1.05, 2.2),
        (" Press", 2.25, 2.6),
        (" two.", 2.65, 3.0),
        (" Press", 3.05, 3.4),
    )

    assert last_committed(cut(words, audio_end_s=3.0 + HOLDBACK_S + 0.1)) == "two."
    assert last_committed(cut(words, audio_end_s=3.0 + HOLDBACK_S - 0.1)) == "one."
    assert cut(words, audio_end_s=2.2 + HOLDBACK_S - 0.1) is None


def test_no_piece_shorter_than_the_minimum_is_cut_off() -> None:
    words = timed(
        (" Yes.", 0.0, MIN_PIECE_S - 0.2),
        (" I", MIN_PIECE_S - 0.1, MIN_PIECE_S + 0.1),
        (" agree,", MIN_PIECE_S + 0.15, MIN_PIECE_S + 0.5),
        (" fully", MIN_PIECE_S + 0.55, MIN_PIECE_S + 0.9),
    )

    assert last_committed(cut(words, audio_end_s=10.0)) == "agree,"
    assert cut(words[:3], audio_end_s=10.0) is None


def test_the_minimum_piece_counts_from_the_start_of_speech_not_of_the_words() -> None:
    """Whisper may time the first word late; the piece is the audio since speech began."""
    words = timed((" Yes.", 1.6, MIN_PIECE_S + 0.1), (" I", MIN_PIECE_S + 0.2, MIN_PIECE_S + 0.4))

    assert last_committed(cut(words, audio_end_s=10.0)) == "Yes."


@pytest.mark.parametrize(
    "words",
    [
        pytest.param(
            timed((" one", 0.0, 2.1), (" long", 2.15, 2.5), (" run", 2.55, 3.0)),
            id="words without punctuation or pause",
        ),
        pytest.param(timed((" Hello.", 0.0, 2.5)), id="one word"),
        pytest.param((), id="no words"),
    ],
)
def test_no_cut_without_a_clear_end(words: tuple[TimedWord, ...]) -> None:
    assert cut(words, audio_end_s=10.0) is None


def test_the_cut_is_in_the_middle_of_the_pause_and_loses_no_word() -> None:
    phrase_cut = cut(MIXED, audio_end_s=7.2)

    assert phrase_cut is not None
    assert phrase_cut.committed + phrase_cut.rest == MIXED
    assert phrase_cut.pause == (SPEECH_START_S + 3.3, SPEECH_START_S + 3.35)
    assert phrase_cut.at_s == pytest.approx(SPEECH_START_S + 3.325)
