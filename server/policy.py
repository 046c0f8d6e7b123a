"""Which STT call a stream makes next: the scheduling policy, as plain logic.

A stream has one STT call in flight at a time, and every call it makes is used:

- A queued final goes first: it is what users keep.
- Long speech (past `max_utterance_s`) is decoded with word timings, to cut it where a
  phrase ended rather than mid-word; once a cut is known it is made before anything else.
- When speech pauses and the short trailing silence an utterance keeps has arrived, the
  would-be final is transcribed at once (a speculation), while the rest of the endpoint
  silence passes: the final then costs nothing after the endpoint. If speech goes on
  instead, the speculation is the next interim, so it is not thrown away; and a pause
  never cancels an interim that is already paid for.
- Interims come while someone speaks: the first once `first_interim_s` of speech is in,
  then one every `interim_interval_s`, but never more than `interim_duty_cycle` of the
  time, so that a final is not stuck behind interims when the STT service is busy.

`decide` sees a snapshot (`View`) and answers with the next `Action`, or with when to look
again; it does no I/O, so it is tested by feeding it snapshots.
"""

import enum
from dataclasses import dataclass

from dragoman.gateway.segmenter import SpeechState

MIN_NEW_AUDIO_S = 0.1
"""An interim covers at least this much audio that its predecessor did not."""
PROBE_EVERY_S = 1.5
"""Audio that long speech must gain before it is probed for a phrase end again."""


class Action(enum.Enum):
    FINAL = "final"
    CUT = "cut"
    PROBE = "probe"
    SPECULATE = "speculate"
    INTERIM = "interim"
    WAIT = "wait"


@dataclass(frozen=True)
class PolicyTuning:
    interim_interval_s: float
    """Most time between two interims of speech, while the STT service keeps up."""
    first_interim_s: float
    """Speech an utterance needs before its first interim."""
    interim_duty_cycle: float
    """Most of the time a stream's interims may keep the STT service busy."""
    max_utterance_s: float
    """Speech past this is probed for a phrase end to cut at."""


@dataclass(frozen=True)
class View:
    """What the policy needs to know of a stream, at `now` (monotonic seconds)."""

    now: float
    finals_waiting: bool
    state: SpeechState
    """Of the utterance in progress."""
    speech_s: float
    """How long the utterance in progress has been speaking."""
    utterance_s: float
    """Audio the utterance in progress holds, pre-speech included."""
    final_audio_ready: bool
    """Speech paused and the audio a final would have is all here."""
    speculated: bool
    """That audio was already transcribed (or is being)."""
    interims_wanted: bool
    last_interim_at: float | None
    """When the last interim of the utterance in progress started; None: none yet."""
    last_interim_audio_s: float
    """How much of the utterance's audio it covered."""
    interims_free_at: float
    """When the duty cycle lets the next interim start."""
    cut_known: bool
    """Where to cut the utterance in progress is known."""
    probed_audio_s: float | None
    """How much of the utterance the last phrase probe covered; None: not probed yet."""


@dataclass(frozen=True)
class Decision:
    action: Action
    wake_at: float | None = None
    """For WAIT: when to look again even if nothing happens (None: at the next event)."""


def _interim_due_at(view: View, tuning: PolicyTuning) -> float:
    if view.last_interim_at is None:
        due = view.now + max(tuning.first_interim_s - view.speech_s, 0.0)
    else:
        due = view.last_interim_at + tuning.interim_interval_s
    return max(due, view.interims_free_at)


def decide(view: View, tuning: PolicyTuning) -> Decision:
    """The next thing a stream does, given `view`."""
    if view.finals_waiting:
        return Decision(Action.FINAL)
    if view.state is SpeechState.INACTIVE:
        return Decision(Action.WAIT)
    if view.cut_known:
        return Decision(Action.CUT)
    if view.speech_s >= tuning.max_utterance_s and (
        view.probed_audio_s is None or view.utterance_s - view.probed_audio_s >= PROBE_EVERY_S
    ):
        return Decision(Action.PROBE)
    if view.state is SpeechState.SILENCE:
        if view.final_audio_ready and not view.speculated:
            return Decision(Action.SPECULATE)
        return Decision(Action.WAIT)
    if not view.interims_wanted:
        return Decision(Action.WAIT)
    due = _interim_due_at(view, tuning)
    if view.now < due:
        return Decision(Action.WAIT, wake_at=due)
    if view.utterance_s - view.last_interim_audio_s < MIN_NEW_AUDIO_S:
        return Decision(Action.WAIT)
    return Decision(Action.INTERIM)
