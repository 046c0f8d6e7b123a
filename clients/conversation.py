"""One continuous stream built from reference clips, as a conversation, with its truth.

A benchmark that streams each short clip on its own, and times results from the server's
own VAD, measures what the server believes rather than what a user sees. Here clips are
joined into multi-sentence turns (short pauses inside a turn, longer ones between turns,
and at least one long monologue that outlasts the maximum utterance), and the speech
boundaries of every clip come from the audio itself: the first and last 20 ms frame
within `SPEECH_FLOOR_DB` of the clip's loudest frame. Each turn keeps its reference text
and those boundaries, so latency is counted from the true end of speech, endpoint
silence included.
"""

import difflib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dragoman.clients.audio_file import PcmAudio, read_pcm
from dragoman.clients.wer import normalize

SAMPLE_RATE_HZ = 16000
FRAME_S = 0.02
SPEECH_FLOOR_DB = -35.0
"""A frame is speech while its level is within this of the clip's loudest frame."""
MARGIN_S = 0.05
"""Audio kept around a clip's speech, so a soft onset or ending is never cut off."""
LEAD_IN_S = 1.0


@dataclass(frozen=True)
class Clip:
    path: Path
    text: str
    samples: np.ndarray
    """int16 at 16 kHz mono."""
    speech_start_s: float
    speech_end_s: float
    """Within the clip, from `speech_bounds`."""


@dataclass(frozen=True)
class Turn:
    """What one speaker said without a long pause: a few clips, or a monologue."""

    index: int
    text: str
    speech_start_s: float
    speech_end_s: float
    """True speech boundaries in stream time."""
    clip_bounds: tuple[tuple[float, float], ...]
    """Each clip's true (start, end) in stream time: the pauses inside the turn lie between."""
    sentences: tuple[str, ...]
    """Each clip's reference text, in order."""


@dataclass(frozen=True)
class Conversation:
    audio: PcmAudio
    turns: tuple[Turn, ...]
    clips: tuple[Clip, ...]
    """In the order they are spoken."""

    @property
    def reference(self) -> str:
        return " ".join(turn.text for turn in self.turns)


def speech_bounds(samples: np.ndarray, rate_hz: int = SAMPLE_RATE_HZ) -> tuple[float, float]:
    """(start, end) in seconds of the first and last 20 ms frame within -35 dB of the loudest."""
    frame = round(FRAME_S * rate_hz)
    count = len(samples) // frame
    if count == 0:
        return 0.0, len(samples) / rate_hz
    frames = samples[: count * frame].astype(np.float64).reshape(count, frame)
    level_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    loud = np.flatnonzero(level_db >= level_db.max() + SPEECH_FLOOR_DB)
    return loud[0] * FRAME_S, (loud[-1] + 1) * FRAME_S


def load_clips(folder: Path, language: str = "en") -> list[Clip]:
    """The clips of `folder/manifest.json` in `language` that have a reference transcript,
    at 16 kHz mono (telephone clips are resampled by PyAV)."""
    entries = json.loads((folder / "manifest.json").read_text())
    clips = []
    for entry in entries:
        if entry["language"] != language or not entry["text"]:
            continue
        path = folder / entry["file"]
        pcm = read_pcm(path, sample_rate_hz=SAMPLE_RATE_HZ, channels=1)
        samples = np.frombuffer(pcm.data, dtype="<i2")
        start_s, end_s = speech_bounds(samples)
        clips.append(Clip(path, entry["text"], samples, start_s, end_s))
    return clips


def _arrange(clips: list[Clip], rng: random.Random, monologue_s: float) -> list[list[Clip]]:
    """Turns of one to four clips, with one monologue of at least `monologue_s` of speech
    (the longest clips, so that it has long sentences and short pauses) in the middle."""
    by_length = sorted(clips, key=lambda c: c.speech_end_s - c.speech_start_s, reverse=True)
    monologue: list[Clip] = []
    for clip in by_length:
        if sum(c.speech_end_s - c.speech_start_s for c in monologue) >= monologue_s:
            break
        monologue.append(clip)
    rest = [clip for clip in clips if clip not in monologue]
    rng.shuffle(rest)
    rng.shuffle(monologue)
    turns: list[list[Clip]] = []
    while rest:
        size = rng.randint(1, 4)
        turns.append(rest[:size])
        rest = rest[size:]
    turns.insert(len(turns) // 2, monologue)
    return turns


def build(
    clips: list[Clip],
    *,
    seed: int = 7,
    pause_in_turn_s: tuple[float, float] = (0.15, 0.5),
    pause_between_turns_s: tuple[float, float] = (1.5, 2.5),
    monologue_s: float = 60.0,
    tail_s: float = 3.0,
) -> Conversation:
    """Lays the clips out as turns of one stream; the same seed gives the same stream."""
    rng = random.Random(seed)
    arranged = _arrange(clips, rng, monologue_s)
    placements: list[tuple[Clip, int]] = []
    turns: list[Turn] = []
    cursor_s = LEAD_IN_S
    for index, turn_clips in enumerate(arranged):
        if index:
            cursor_s += rng.uniform(*pause_between_turns_s)
        bounds = []
        for position, clip in enumerate(turn_clips):
            if position:
                cursor_s += rng.uniform(*pause_in_turn_s)
            length_s = clip.speech_end_s - clip.speech_start_s
            bounds.append((cursor_s, cursor_s + length_s))
            offset = round((cursor_s - clip.speech_start_s) * SAMPLE_RATE_HZ)
            placements.append((clip, offset))
            cursor_s += length_s
        turns.append(
            Turn(
                index=index,
                text=" ".join(clip.text for clip in turn_clips),
                speech_start_s=bounds[0][0],
                speech_end_s=bounds[-1][1],
                clip_bounds=tuple(bounds),
                sentences=tuple(clip.text for clip in turn_clips),
            )
        )
    total = round((cursor_s + tail_s) * SAMPLE_RATE_HZ)
    mix = np.zeros(total, dtype=np.int32)
    margin = round(MARGIN_S * SAMPLE_RATE_HZ)
    for clip, offset in placements:
        first = max(round(clip.speech_start_s * SAMPLE_RATE_HZ) - margin, 0)
        last = min(round(clip.speech_end_s * SAMPLE_RATE_HZ) + margin, len(clip.samples))
        mix[offset + first : offset + last] += clip.samples[first:last]
    audio = np.clip(mix, -32768, 32767).astype("<i2")
    spoken = tuple(clip for clip, _ in placements)
    return Conversation(PcmAudio(audio.tobytes(), SAMPLE_RATE_HZ, 1), tuple(turns), spoken)


def turn_at(turns: tuple[Turn, ...], start_s: float, end_s: float) -> Turn | None:
    """The turn that a result spanning [start_s, end_s] of stream time belongs to: the one
    it overlaps most, or the nearest when it overlaps none (a VAD onset a little early)."""
    if not turns:
        return None

    def overlap(turn: Turn) -> float:
        return min(end_s, turn.speech_end_s) - max(start_s, turn.speech_start_s)

    return max(turns, key=overlap)


PRESENT_SHARE = 0.5
"""A sentence is present when at least this share of its words is in the transcript."""


def sentences_present(turn: Turn, hypothesis: str) -> list[bool]:
    """For each sentence of the turn, whether the turn's transcript says it: at least half
    of its words aligned, in order, with the transcript (a misheard word is not a lost
    sentence; a sentence Whisper dropped is)."""
    sentences = [normalize(sentence).split() for sentence in turn.sentences]
    reference = [word for sentence in sentences for word in sentence]
    matcher = difflib.SequenceMatcher(a=reference, b=normalize(hypothesis).split(), autojunk=False)
    matched = [False] * len(reference)
    for block in matcher.get_matching_blocks():
        matched[block.a : block.a + block.size] = [True] * block.size
    present, start = [], 0
    for sentence in sentences:
        share = sum(matched[start : start + len(sentence)]) / max(len(sentence), 1)
        present.append(share >= PRESENT_SHARE)
        start += len(sentence)
    return present
