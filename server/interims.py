"""The interim state of a stream: what each open segment last said, and its revisions.

Every result of a segment (interims, their translations, the final) carries the next
revision of that segment; once its final is out, a segment takes no more interims, and
an interim that says what the previous one said is not sent again.
"""

from collections import Counter
from dataclasses import dataclass

from dragoman.gateway.transcriber import Transcript


@dataclass(frozen=True)
class Interim:
    segment_id: int
    revision: int
    transcript: Transcript
    stability: float
    """Share of its words already said, in order, by the previous interim."""
    start_s: float
    """Stream time where the segment's speech started."""
    latency_s: float
    """From the arrival of the audio it covers to now."""


def stability(previous: str, current: str) -> float:
    """Share of the current interim's words already present, in order, in the previous one."""
    words, before = current.split(), previous.split()
    if not words:
        return 0.0
    same = 0
    for a, b in zip(words, before, strict=False):
        if a != b:
            break
        same += 1
    return same / len(words)


class InterimState:
    def __init__(self) -> None:
        self._revisions: Counter[int] = Counter()
        self._finished = 0
        """The last segment whose final is out."""
        self.latest: Interim | None = None
        """The last interim sent, of the segment still open."""

    def is_open(self, segment_id: int) -> bool:
        return segment_id > self._finished

    def offer(
        self, segment_id: int, transcript: Transcript, *, start_s: float, latency_s: float
    ) -> Interim | None:
        """The interim to send for `transcript`, or None: the segment's final is out, or the
        text is empty or unchanged."""
        if not self.is_open(segment_id) or not transcript.text:
            return None
        latest = self.latest if self.latest and self.latest.segment_id == segment_id else None
        previous = latest.transcript.text if latest else ""
        if transcript.text == previous:
            return None
        self.latest = Interim(
            segment_id,
            self.revise(segment_id),
            transcript,
            stability(previous, transcript.text),
            start_s,
            latency_s,
        )
        return self.latest

    def revise(self, segment_id: int) -> int:
        """The next revision of a segment."""
        self._revisions[segment_id] += 1
        return self._revisions[segment_id]

    def finish(self, segment_id: int) -> int:
        """The revision of the segment's final; the segment takes no more interims."""
        revision = self.revise(segment_id)
        del self._revisions[segment_id]
        self._finished = max(self._finished, segment_id)
        if self.latest is not None and self.latest.segment_id <= segment_id:
            self.latest = None
        return revision
