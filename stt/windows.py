"""How much audio Whisper's encoder sees for a request, and when a decode is not trusted.

Whisper was trained on 30-second windows, and faster-whisper pads every request to one,
so a 1-second interim costs as much as a 15-second final: on a 2-core CPU the tiny.en
encoder takes about 490 ms for 30 s and 28 ms for 5 s. CTranslate2 encodes shorter
inputs, so a request's window is fitted to its audio (its length plus a margin, never
less than a minimum), which is most of the cost of streaming recognition.

A window much shorter than 30 s is known to make Whisper loop or run on past the speech,
so a fitted decode is guarded: a token budget proportional to the audio bounds what a
loop can cost, and a decode that hits it, repeats itself (compression ratio) or is
unsure of itself (average log-probability) is not used: the request is decoded again in
the full 30-second window, with temperature fallback, as faster-whisper would.
"""

import itertools
import math
from dataclasses import dataclass
from typing import Literal

FRAMES_PER_S = 100
FULL_WINDOW_FRAMES = 3000
"""Whisper's training window: 30 s of 10 ms feature frames."""

COMPRESSION_RATIO_LIMIT = 2.4
LOG_PROB_FLOOR = -1.0
NO_SPEECH_PROBABILITY = 0.6
"""faster-whisper's defaults: above this, with a low log-probability, the window is
silence, and a low log-probability alone is no reason to decode it again."""

WindowMode = Literal["fitted", "full"]


@dataclass(frozen=True)
class WindowPolicy:
    """The encoder window of a request of `audio_s` seconds."""

    mode: WindowMode = "fitted"
    margin_s: float = 1.0
    """Least silence after the audio inside the window, so the decoder sees the speech end."""
    margin_share: float = 0.5
    """Silence after the audio, as a share of the audio's length, where that is more than
    `margin_s`. Whisper drops the last phrase of speech that ends close to the end of its
    window, taking it to go on in the next: a 14 s utterance lost "Or 8 to exit." in a
    15 s or 17 s window and kept it in 20 s (`tests/integration/test_streaming.py`'s
    telephone menu)."""
    min_s: float = 10.0
    """Shortest window. Below 10 s Whisper loops on short utterances (`dragoman bench
    --windows`: tiny.en finals retried in 30 s on 6 of 27 clips with 5 s, none with 10 s)."""
    tokens_per_s: float = 12.0
    """Token budget per second of audio: twice what the densest test clip (digits) needs,
    5.9 per second of speech. It must be generous: a beam search that reaches it returns
    the best hypothesis that ended, which can be a truncated one."""
    min_tokens: int = 16

    def frames(self, audio_s: float) -> int:
        """Feature frames of the window: even (the encoder halves them), at most 30 s."""
        if self.mode == "full":
            return FULL_WINDOW_FRAMES
        margin_s = max(self.margin_s, self.margin_share * audio_s)
        seconds = max(audio_s + margin_s, self.min_s)
        return min(FULL_WINDOW_FRAMES, 2 * math.ceil(seconds * FRAMES_PER_S / 2))

    def token_budget(self, audio_s: float) -> int:
        return self.min_tokens + math.ceil(self.tokens_per_s * audio_s)


RUN_ON_S = 0.5
"""A word may end this far past the audio (its timings are coarse) and no further."""
MIN_REPEATED_TOKENS = 3
"""A run of tokens said twice in a row is a loop from this length on ("10 of clubs. 10 of
clubs."), where the compression ratio of so short a text says nothing."""
MAX_SAME_TOKEN = 4
"""One token this many times in a row is a loop ("5, 5, 5, 5")."""


def loop_start(tokens: list[int]) -> int | None:
    """Where the decode starts to loop (a loop runs on to its end): the index of the second
    saying of its last run of tokens, or of the fourth of one token said over and over;
    None when it does not loop."""
    for size in range(MIN_REPEATED_TOKENS, len(tokens) // 2 + 1):
        if tokens[-size:] == tokens[-2 * size : -size]:
            start = len(tokens) - size
            while (
                start - size >= size
                and tokens[start - size : start] == tokens[start - 2 * size : start - size]
            ):
                start -= size
            return start
    run = 1
    for index, (previous, token) in enumerate(itertools.pairwise(tokens), start=1):
        run = run + 1 if token == previous else 1
        if run >= MAX_SAME_TOKEN:
            return index - run + 2
    return None


def distrust(
    *,
    tokens: list[int],
    budget: int,
    compression_ratio: float,
    avg_logprob: float,
    no_speech_prob: float,
    run_on_s: float = 0.0,
    timestamp_tokens: int = 0,
) -> str:
    """Why a fitted decode is not to be trusted ("" when it is); `tokens` are its text
    tokens, `timestamp_tokens` how many timestamps it decoded besides (they count towards
    the budget), `run_on_s` how far its last word ends past the audio."""
    if len(tokens) + timestamp_tokens >= budget:
        return f"it used its whole budget of {budget} tokens"
    if run_on_s > RUN_ON_S:
        return f"it runs on {run_on_s:.1f} s past the audio"
    if compression_ratio > COMPRESSION_RATIO_LIMIT:
        return f"it repeats itself (compression ratio {compression_ratio:.2f})"
    if loop_start(tokens) is not None:
        return "it says the same words twice in a row"
    if avg_logprob < LOG_PROB_FLOOR and no_speech_prob <= NO_SPEECH_PROBABILITY:
        return f"it is unsure (average log-probability {avg_logprob:.2f})"
    return ""
