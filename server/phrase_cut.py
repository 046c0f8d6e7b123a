"""Where to cut long speech: after the last phrase Whisper's own output says has ended.

Whisper drops the half-phrase at a hard cut, so cutting at the quietest window near a
limit lost words ("... press the pound key to dis-" vanished). Here the cut goes between
two words of a word-timed decode of the speech so far: preferably after a sentence end,
else after a clause end, else in the longest pause between words, and never in the last
`HOLDBACK_S` of the audio, where words may still be incomplete and a decode revises them.
The words before the cut are the piece's final; the audio after it goes on as the next
utterance, so no word is lost or said twice.
"""

from dataclasses import dataclass

from dragoman.gateway.transcriber import TimedWord

HOLDBACK_S = 1.5
"""Words ending this close to the end of the decoded audio are not committed."""
MIN_PIECE_S = 2.0
"""Shortest piece of speech a cut leaves before it."""
MIN_PAUSE_S = 0.15
"""A pause between words without punctuation must be this long to cut in."""
SENTENCE_ENDS = (".", "?", "!")
CLAUSE_ENDS = (",", ";", ":")


@dataclass(frozen=True)
class PhraseCut:
    at_s: float
    """Stream time to cut at: the middle of the pause after the last committed word."""
    committed: tuple[TimedWord, ...]
    """The words before the cut."""
    rest: tuple[TimedWord, ...]
    """The words after it, as decoded so far."""

    @property
    def pause(self) -> tuple[float, float]:
        """Stream times of the end of the last committed word and start of the next."""
        return self.committed[-1].end_s, self.rest[0].start_s


def _rank(word: TimedWord, following: TimedWord) -> int:
    """2 after a sentence, 1 after a clause, 0 in a long enough pause, -1 otherwise."""
    ending = word.word.strip()
    if ending.endswith(SENTENCE_ENDS):
        return 2
    if ending.endswith(CLAUSE_ENDS):
        return 1
    if following.start_s - word.end_s >= MIN_PAUSE_S:
        return 0
    return -1


def choose(
    words: tuple[TimedWord, ...], *, speech_start_s: float, audio_end_s: float
) -> PhraseCut | None:
    """The best cut in `words` (stream times) of speech that started at `speech_start_s` and
    was decoded up to `audio_end_s`; None when no phrase has clearly ended."""
    best: tuple[int, float, int] | None = None
    for index in range(len(words) - 1):
        word, following = words[index], words[index + 1]
        if word.end_s > audio_end_s - HOLDBACK_S:
            break
        if word.end_s - speech_start_s < MIN_PIECE_S:
            continue
        rank = _rank(word, following)
        if rank < 0:
            continue
        pause_s = following.start_s - word.end_s
        # The strongest kind of end wins; among equals, the latest (rank 0: the longest pause).
        candidate = (rank, pause_s if rank == 0 else word.end_s, index)
        if best is None or candidate[:2] >= best[:2]:
            best = candidate
    if best is None:
        return None
    index = best[2]
    at_s = (words[index].end_s + words[index + 1].start_s) / 2
    return PhraseCut(at_s, words[: index + 1], words[index + 1 :])
