"""The continuous benchmark scores what a user sees: latencies from the true speech
boundaries of the audio as the client sent it, and a turn whose last sentence never came
back counts as incomplete."""

import pytest

from dragoman.clients import conversation
from dragoman.clients.conversation import Conversation
from dragoman.clients.conversation_bench import ClientRun, Timed, score
from tests.conftest import DATA

CLIPS = ("en/jfk.wav", "en/librivox-0880.wav", "en/goforward.wav", "en/cards-001.wav")


@pytest.fixture(scope="module")
def talk() -> Conversation:
    clips = [c for c in conversation.load_clips(DATA) if str(c.path).endswith(CLIPS)]
    return conversation.build(clips, seed=3, monologue_s=1.0)


def _sent_in_real_time(talk: Conversation, started: float) -> ClientRun:
    """A client that sent each 100 ms chunk as it was spoken, from `started` on."""
    run = ClientRun()
    chunks = round(talk.audio.duration_s * 10)
    run.log.chunk_end_s.extend((i + 1) / 10 for i in range(chunks))
    run.log.sent_at.extend(started + (i + 1) / 10 for i in range(chunks))
    return run


def test_latencies_run_from_the_true_boundaries_as_sent(talk) -> None:
    run = _sent_in_real_time(talk, started=100.0)
    for turn in talk.turns:
        middle = (turn.speech_start_s + turn.speech_end_s) / 2
        first_word = turn.text.split()[0]
        run.results.append(
            Timed(100.0 + middle, turn.speech_start_s, middle, f"{first_word} uh", False)
        )
        run.results.append(
            Timed(
                100.0 + turn.speech_end_s + 0.7,
                turn.speech_start_s,
                turn.speech_end_s,
                turn.text,
                True,
            )
        )
    scores = score(talk, run)
    assert len(scores) == len(talk.turns) > 1
    for turn_score in scores:
        turn = turn_score.turn
        assert turn_score.final_latency_s == pytest.approx(0.7, abs=0.11)
        middle_s = (turn.speech_end_s - turn.speech_start_s) / 2
        assert turn_score.first_text_s == pytest.approx(middle_s, abs=0.11)
        assert turn_score.complete


def test_a_turn_without_its_last_sentence_or_any_final_is_counted(talk) -> None:
    run = _sent_in_real_time(talk, started=0.0)
    first, second = talk.turns[0], talk.turns[1]
    said = " ".join(first.sentences[:-1]) or "something else entirely"
    run.results.append(
        Timed(first.speech_end_s + 1, first.speech_start_s, first.speech_end_s, said, True)
    )
    scores = score(talk, run)
    assert not scores[0].complete
    assert scores[0].sentences_present[-1] is False
    assert scores[1].turn is second
    assert scores[1].final_latency_s is None
    assert scores[1].first_text_s is None
