"""The fitted encoder window and the guards that send a fitted decode back to 30 s.

Token ids are tiny.en's (GPT-2 vocabulary), written out so these tests need no model.
"""

import pytest

from dragoman.stt.windows import (
    COMPRESSION_RATIO_LIMIT,
    FULL_WINDOW_FRAMES,
    WindowPolicy,
    distrust,
    loop_start,
)

JFK = [843, 523, 616, 5891, 3399, 11, 1265, 407, 644, 534, 1499, 460, 466, 329, 345, 11]
JFK += [1265, 644, 345, 460, 466, 329, 534, 1499, 13]
"""And so my fellow Americans, ask not what your country can do for you, ask what you can
do for your country. ("ask ... can do for ..." comes back, but not twice in a row.)"""
TEN_OF_CLUBS = [838, 286, 9784, 13]
""" 10 of clubs."""
SPADES_CLUBS = [18087, 286, 599, 2367, 11, 1440, 286, 9784, 13]
""" Eight of spades, four of clubs."""
HE_WAS = [679, 373]
VERY = 845
FIVE = 1936


@pytest.mark.parametrize(
    ("audio_s", "frames"),
    [
        (0.0, 1000),  # the minimum window, 10 s
        (6.0, 1000),
        (8.0, 1200),  # audio and half as much again
        (12.005, 1802),  # 1800.75 frames round up to an even count
        (19.5, 2926),
        (20.0, FULL_WINDOW_FRAMES),  # never past Whisper's 30 s
        (300.0, FULL_WINDOW_FRAMES),
    ],
)
def test_fitted_window_is_the_audio_plus_a_margin_within_bounds(
    audio_s: float, frames: int
) -> None:
    assert WindowPolicy().frames(audio_s) == frames


def test_fitted_window_frames_are_always_even() -> None:
    """The encoder halves the frames; an odd count would lose the last one."""
    policy = WindowPolicy(min_s=0.0, margin_s=0.0)

    counts = {policy.frames(hundredths / 100) for hundredths in range(1, 3101, 7)}

    assert all(count % 2 == 0 for count in counts)
    assert min(counts) == 2
    assert max(counts) == FULL_WINDOW_FRAMES


def test_policy_settings_move_the_window() -> None:
    assert WindowPolicy(min_s=5.0).frames(2.0) == 500
    assert WindowPolicy(min_s=0.0).frames(1.5) == 250  # the least margin, 1 s
    assert WindowPolicy(min_s=0.0, margin_s=0.5, margin_share=0.0).frames(2.0) == 250
    assert WindowPolicy(min_s=0.0, margin_share=0.25).frames(8.0) == 1000


@pytest.mark.parametrize("audio_s", [0.0, 1.0, 12.0, 30.0, 120.0])
def test_full_mode_always_takes_the_whole_window(audio_s: float) -> None:
    assert WindowPolicy(mode="full").frames(audio_s) == FULL_WINDOW_FRAMES


def test_token_budget_grows_with_the_audio_from_a_floor() -> None:
    policy = WindowPolicy()

    assert policy.token_budget(0.0) == 16
    assert policy.token_budget(0.01) == 17  # a part of a token rounds up
    assert policy.token_budget(2.0) == 16 + 24
    assert WindowPolicy(tokens_per_s=5, min_tokens=0).token_budget(3.1) == 16


@pytest.mark.parametrize(
    "tokens",
    [
        pytest.param(JFK, id="speech that comes back to its words"),
        pytest.param(SPADES_CLUBS, id="one word twice, not in a row"),
        pytest.param(HE_WAS + [VERY] * 3 + [10032, 13], id="a word said three times"),
        pytest.param([FIVE, FIVE], id="a two-token repeat (five five)"),
        pytest.param(JFK[:2] * 2, id="a run shorter than three tokens"),
        pytest.param([], id="nothing"),
    ],
)
def test_ordinary_speech_does_not_loop(tokens: list[int]) -> None:
    assert loop_start(tokens) is None


def test_a_run_said_twice_loops_from_its_second_saying() -> None:
    assert loop_start(TEN_OF_CLUBS * 2) == len(TEN_OF_CLUBS)
    assert loop_start(SPADES_CLUBS + TEN_OF_CLUBS * 3) == len(SPADES_CLUBS + TEN_OF_CLUBS)


def test_a_loop_cut_short_by_the_budget_is_found_with_what_came_before_it() -> None:
    """The budget stops a loop anywhere in a run; the cut keeps the speech before the loop
    and one whole saying, and never two."""
    tokens = JFK + TEN_OF_CLUBS * 3 + TEN_OF_CLUBS[:2]

    start = loop_start(tokens)

    assert start is not None
    assert len(JFK) + len(TEN_OF_CLUBS) <= start < len(JFK) + 2 * len(TEN_OF_CLUBS)


def test_one_token_four_times_loops_from_its_second_saying() -> None:
    assert loop_start(HE_WAS + [VERY] * 4) == len(HE_WAS) + 1
    assert loop_start([FIVE] * 5) == 1


def _clean(**changes: object) -> dict:
    """What a good fitted decode of 2 s of speech looks like, with `changes`."""
    decode: dict = {
        "tokens": HE_WAS + SPADES_CLUBS,
        "budget": WindowPolicy().token_budget(2.0),
        "compression_ratio": 1.1,
        "avg_logprob": -0.3,
        "no_speech_prob": 0.05,
        "run_on_s": 0.2,
    }
    return decode | changes


def test_a_clean_decode_is_trusted() -> None:
    assert distrust(**_clean()) == ""


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param(
            {"budget": len(HE_WAS + SPADES_CLUBS)}, "whole budget of 11 tokens", id="budget"
        ),
        pytest.param(
            {"budget": len(HE_WAS + SPADES_CLUBS) + 2, "timestamp_tokens": 2},
            "whole budget of 13 tokens",
            id="budget spent on timestamps too",
        ),
        pytest.param({"run_on_s": 0.8}, "runs on 0.8 s past the audio", id="run on"),
        pytest.param(
            {"compression_ratio": 2.6}, "repeats itself (compression ratio 2.60)", id="ratio"
        ),
        pytest.param({"tokens": TEN_OF_CLUBS * 2}, "the same words twice in a row", id="loop"),
        pytest.param({"avg_logprob": -1.2}, "unsure (average log-probability -1.20)", id="unsure"),
    ],
)
def test_each_guard_says_why_a_decode_is_not_trusted(changes: dict, reason: str) -> None:
    assert reason in distrust(**_clean(**changes))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"budget": len(HE_WAS + SPADES_CLUBS) + 1}, id="one token to spare"),
        pytest.param({"run_on_s": 0.5}, id="a word ending half a second late"),
        pytest.param({"compression_ratio": COMPRESSION_RATIO_LIMIT}, id="ratio at the limit"),
        pytest.param({"avg_logprob": -1.0}, id="log-probability at the floor"),
        pytest.param({"avg_logprob": -1.5, "no_speech_prob": 0.7}, id="unsure of silence"),
    ],
)
def test_guards_trip_only_past_their_limits(changes: dict) -> None:
    assert distrust(**_clean(**changes)) == ""


def test_an_unsure_decode_of_likely_speech_is_distrusted() -> None:
    """The no-speech probability excuses a low log-probability only above its threshold."""
    assert "unsure" in distrust(**_clean(avg_logprob=-1.5, no_speech_prob=0.6))


def test_the_budget_is_checked_first() -> None:
    """A decode cut by its budget is reported as such, whatever else is wrong with it."""
    looped = TEN_OF_CLUBS * 4

    reason = distrust(**_clean(tokens=looped, budget=len(looped), compression_ratio=3.0))

    assert "budget" in reason
