"""Several requests in one encoder and one generate call, in a window fitted to the audio.

Batching and the fitted window are what make streaming affordable; they must not change
what is heard. tiny.en decodes a short clip in a fraction of a second on two cores, so
each test makes a few decodes at most.
"""

import asyncio
import dataclasses
import re
from collections.abc import Callable

import numpy as np
import pytest

from dragoman.stt.engine import SAMPLE_RATE_HZ, TranscribeOptions, WhisperEngine
from dragoman.stt.scheduler import Priority, Scheduler
from dragoman.stt.windows import WindowPolicy
from tests.stt.conftest import SPEECH, read_pcm16

GREEDY = TranscribeOptions(beam_size=1, temperatures=(0.0,))
IN_WORDS = "Ten of clubs. Nine of hearts."
IN_DIGITS = "10 of clubs. 9 of hearts."
"""Prompts of as many tokens, that steer tiny.en to numbers in words or in digits."""


def clip(name: str) -> np.ndarray:
    return np.frombuffer(read_pcm16(SPEECH / "en" / name), dtype="<i2").astype(np.float32) / 32768


@pytest.fixture(scope="module")
def ill_disposed() -> np.ndarray:
    """2.99 s: he was not an ill disposed young man."""
    return clip("librivox-0880.wav")


@pytest.fixture(scope="module")
def selfish() -> np.ndarray:
    """5.3 s: unless to be rather cold hearted and rather selfish is to be ill disposed."""
    return clip("librivox-0890.wav")


@pytest.fixture(scope="module")
def ten_of_clubs() -> np.ndarray:
    """1.1 s."""
    return clip("cards-001.wav")


@pytest.fixture(scope="module")
def three_cards() -> np.ndarray:
    """3.5 s: eight of spades four of clubs seven of hearts."""
    return clip("cards-005.wav")


@pytest.fixture
def words_apart(word_error_rate: Callable[[str, str], float]) -> Callable[[str, str], int]:
    """Word edits between two transcripts, ignoring case and punctuation: a batched decode
    may round differently from a lone one, and so change a word, rarely more."""
    return lambda alone, batched: round(
        word_error_rate(alone, batched) * len(re.sub(r"[^\w\s']", " ", alone).split())
    )


def seconds(audio: np.ndarray) -> float:
    return len(audio) / SAMPLE_RATE_HZ


def test_a_batch_of_clips_of_different_lengths_hears_what_each_hears_alone(
    tiny_engine: WhisperEngine,
    ill_disposed: np.ndarray,
    selfish: np.ndarray,
    ten_of_clubs: np.ndarray,
    words_apart: Callable[[str, str], int],
) -> None:
    clips = [ill_disposed, selfish, ten_of_clubs]
    final = TranscribeOptions()
    assert len({tiny_engine.batch_key(seconds(audio), final) for audio in clips}) == 1

    alone = [tiny_engine.transcribe(audio, final) for audio in clips]
    batched = tiny_engine.transcribe_batch([(audio, final) for audio in clips])

    for lone, batch in zip(alone, batched, strict=True):
        assert words_apart(lone.text, batch.text) <= 1, (lone.text, batch.text)
        assert batch.window_s == lone.window_s == 10.0 < 30  # the shortest fitted window
        assert batch.full_window_reason == ""
    assert "clubs" in batched[2].text


def test_a_batch_is_encoded_in_the_window_of_its_longest_clip(
    tiny_engine: WhisperEngine,
    jfk_audio: np.ndarray,
    jfk_reference: str,
    ill_disposed: np.ndarray,
    word_error_rate: Callable[[str, str], float],
) -> None:
    """The scheduler does not batch these (their windows differ too much); the engine
    still decodes them right if it is asked to."""
    assert tiny_engine.batch_key(seconds(jfk_audio), GREEDY) != tiny_engine.batch_key(
        seconds(ill_disposed), GREEDY
    )

    jfk, short = tiny_engine.transcribe_batch([(jfk_audio, GREEDY), (ill_disposed, GREEDY)])

    assert jfk.window_s == short.window_s == 16.5  # 11 s of audio and half as much again
    assert word_error_rate(jfk_reference, jfk.text) < 0.2
    assert "young man" in short.text


def test_the_full_mode_decodes_in_30_seconds(
    tiny_engine: WhisperEngine,
    ill_disposed: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    words_apart: Callable[[str, str], int],
) -> None:
    fitted = tiny_engine.transcribe(ill_disposed, GREEDY)
    monkeypatch.setattr(tiny_engine, "windows", WindowPolicy(mode="full"))

    full = tiny_engine.transcribe(ill_disposed, GREEDY)

    assert (fitted.window_s, full.window_s) == (10.0, 30.0)
    assert words_apart(full.text, fitted.text) <= 1


def test_a_distrusted_decode_is_redone_in_the_full_window_unless_told_not_to(
    tiny_engine: WhisperEngine,
    ill_disposed: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A budget of two tokens (the first timestamp and one word) trips the guard; a final is
    decoded again in 30 s, an interim keeps what the fitted window gave, in the same batch."""
    monkeypatch.setattr(tiny_engine, "windows", WindowPolicy(tokens_per_s=0, min_tokens=2))
    interim = dataclasses.replace(GREEDY, retry_full_window=False)

    final, cut_short = tiny_engine.transcribe_batch(
        [(ill_disposed, GREEDY), (ill_disposed, interim)]
    )

    assert "whole budget of 2 tokens" in final.full_window_reason
    assert final.window_s == 30.0
    assert "young man" in final.text
    assert (cut_short.text, cut_short.window_s, cut_short.full_window_reason) == (
        "He",
        10.0,
        "",
    )


def test_prompts_of_one_length_share_a_call_and_a_request_without_one_runs_apart(
    tiny_engine: WhisperEngine,
    ten_of_clubs: np.ndarray,
    three_cards: np.ndarray,
    words_apart: Callable[[str, str], int],
) -> None:
    """generate wants the transcript to start at one position in every row of a call, so
    a prompt's length is part of the batch key and its text is not; each row still
    follows its own prompt (these two steer tiny.en to words or to digits)."""
    requests = [
        (ten_of_clubs, dataclasses.replace(GREEDY, initial_prompt=IN_WORDS)),
        (three_cards, dataclasses.replace(GREEDY, initial_prompt=IN_DIGITS)),
        (three_cards, GREEDY),
    ]
    keys = [tiny_engine.batch_key(seconds(audio), options) for audio, options in requests]
    assert keys[0] == keys[1] != keys[2]
    alone = [tiny_engine.transcribe(audio, options).text for audio, options in requests]

    async def scenario() -> list:
        scheduler = Scheduler(max_queue=8, max_batch_size=8, batch_wait_s=0.3)
        scheduler.add_engine(tiny_engine)
        jobs = [
            scheduler.submit(tiny_engine.name, audio, options, Priority.FINAL)
            for audio, options in requests
        ]
        done = await asyncio.gather(*jobs)
        await scheduler.close()
        assert scheduler.stats.batches == 2
        return done

    done = asyncio.run(scenario())

    assert [d.batch_size for d in done] == [2, 2, 1]
    texts = [d.result.text for d in done]
    for lone, batch in zip(alone, texts, strict=True):
        assert words_apart(lone, batch) <= 1, (lone, batch)
    assert texts[0].startswith("Ten of clubs"), texts
    assert texts[1].startswith("8 of spades"), texts
