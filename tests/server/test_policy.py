"""The scheduling policy, fed with snapshots: each rule of `decide` on its own."""

import dataclasses

import pytest

from dragoman.gateway.policy import (
    MIN_NEW_AUDIO_S,
    PROBE_EVERY_S,
    Action,
    Decision,
    PolicyTuning,
    View,
    decide,
)
from dragoman.gateway.segmenter import SpeechState

TUNING = PolicyTuning(
    interim_interval_s=1.0,
    first_interim_s=0.5,
    interim_duty_cycle=0.5,
    max_utterance_s=15.0,
)

# Speech in progress for 3 s, its last interim 2 s ago: an interim is due, nothing else is.
SPEAKING = View(
    now=100.0,
    finals_waiting=False,
    state=SpeechState.ACTIVE,
    speech_s=3.0,
    utterance_s=4.0,
    final_audio_ready=False,
    speculated=False,
    interims_wanted=True,
    last_interim_at=98.0,
    last_interim_audio_s=2.0,
    interims_free_at=0.0,
    cut_known=False,
    probed_audio_s=None,
)


def view(**changes: object) -> View:
    return dataclasses.replace(SPEAKING, **changes)


def test_the_baseline_wants_an_interim() -> None:
    """The other tests change one thing of this view; it must not decide by itself."""
    assert decide(SPEAKING, TUNING) == Decision(Action.INTERIM)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"state": SpeechState.INACTIVE},
        {"cut_known": True},
        {"speech_s": 20.0, "utterance_s": 21.0},
        {"state": SpeechState.SILENCE, "final_audio_ready": True},
    ],
)
def test_a_waiting_final_goes_before_anything_else(changes: dict) -> None:
    assert decide(view(finals_waiting=True, **changes), TUNING) == Decision(Action.FINAL)


def test_no_speech_waits_for_the_next_event() -> None:
    inactive = view(state=SpeechState.INACTIVE, speech_s=0.0, utterance_s=0.0)
    assert decide(inactive, TUNING) == Decision(Action.WAIT, wake_at=None)


@pytest.mark.parametrize("state", [SpeechState.ACTIVE, SpeechState.SILENCE])
def test_a_known_cut_is_made_before_probes_and_interims(state: SpeechState) -> None:
    long_speech = view(state=state, cut_known=True, speech_s=20.0, utterance_s=21.0)
    assert decide(long_speech, TUNING) == Decision(Action.CUT)


def test_speech_past_the_limit_is_probed() -> None:
    at_limit = view(speech_s=TUNING.max_utterance_s, utterance_s=16.0, last_interim_at=99.9)
    assert decide(at_limit, TUNING) == Decision(Action.PROBE)


def test_speech_under_the_limit_is_not_probed() -> None:
    assert decide(view(speech_s=14.9, utterance_s=15.9), TUNING).action is Action.INTERIM


def test_a_probe_is_repeated_only_after_enough_new_audio() -> None:
    probed = view(speech_s=16.0, utterance_s=17.0, last_interim_at=99.9)
    just_probed = dataclasses.replace(probed, probed_audio_s=17.0 - PROBE_EVERY_S + 0.1)
    assert decide(just_probed, TUNING) == Decision(Action.WAIT, wake_at=pytest.approx(100.9))
    grown = dataclasses.replace(probed, probed_audio_s=17.0 - PROBE_EVERY_S)
    assert decide(grown, TUNING) == Decision(Action.PROBE)


def test_long_speech_is_probed_in_a_pause_too() -> None:
    paused = view(state=SpeechState.SILENCE, speech_s=16.0, utterance_s=17.0)
    assert decide(paused, TUNING) == Decision(Action.PROBE)


def test_a_pause_with_its_final_audio_in_is_speculated() -> None:
    paused = view(state=SpeechState.SILENCE, final_audio_ready=True)
    assert decide(paused, TUNING) == Decision(Action.SPECULATE)


def test_a_pause_speculated_already_waits() -> None:
    paused = view(state=SpeechState.SILENCE, final_audio_ready=True, speculated=True)
    assert decide(paused, TUNING) == Decision(Action.WAIT, wake_at=None)


def test_a_pause_never_starts_an_interim() -> None:
    """The interim is due in SPEAKING; a pause whose final audio is not all in waits."""
    paused = view(state=SpeechState.SILENCE, final_audio_ready=False)
    assert decide(paused, TUNING) == Decision(Action.WAIT, wake_at=None)


def test_the_first_interim_waits_for_enough_speech() -> None:
    starting = view(speech_s=0.2, last_interim_at=None, last_interim_audio_s=0.0)
    assert decide(starting, TUNING) == Decision(
        Action.WAIT, wake_at=pytest.approx(100.0 + TUNING.first_interim_s - 0.2)
    )


def test_the_first_interim_comes_once_enough_speech_is_in() -> None:
    started = view(speech_s=TUNING.first_interim_s, last_interim_at=None, last_interim_audio_s=0.0)
    assert decide(started, TUNING) == Decision(Action.INTERIM)


def test_the_next_interim_waits_for_the_interval() -> None:
    recent = view(last_interim_at=99.4)
    assert decide(recent, TUNING) == Decision(Action.WAIT, wake_at=pytest.approx(100.4))


def test_an_interim_is_due_exactly_one_interval_after_the_last() -> None:
    assert decide(view(last_interim_at=99.0), TUNING) == Decision(Action.INTERIM)


@pytest.mark.parametrize("last_interim_at", [None, 98.0])
def test_interims_wait_for_the_duty_cycle(last_interim_at: float | None) -> None:
    busy = view(last_interim_at=last_interim_at, interims_free_at=100.7)
    assert decide(busy, TUNING) == Decision(Action.WAIT, wake_at=100.7)


def test_the_duty_cycle_does_not_bring_an_interim_forward() -> None:
    recent = view(last_interim_at=99.4, interims_free_at=100.1)
    assert decide(recent, TUNING) == Decision(Action.WAIT, wake_at=pytest.approx(100.4))


def test_no_interim_without_enough_new_audio() -> None:
    stalled = view(last_interim_audio_s=4.0 - MIN_NEW_AUDIO_S / 2)
    assert decide(stalled, TUNING) == Decision(Action.WAIT, wake_at=None)
    fed = view(last_interim_audio_s=4.0 - MIN_NEW_AUDIO_S)
    assert decide(fed, TUNING) == Decision(Action.INTERIM)


def test_no_interims_unless_wanted() -> None:
    assert decide(view(interims_wanted=False), TUNING) == Decision(Action.WAIT, wake_at=None)


def test_a_pause_is_still_speculated_without_interims() -> None:
    paused = view(interims_wanted=False, state=SpeechState.SILENCE, final_audio_ready=True)
    assert decide(paused, TUNING) == Decision(Action.SPECULATE)
