"""The limits a live stream's audio must keep: pace, duration and silence of the sender.

A sender that is too fast is held back, not refused: the stream stops reading until the
audio it has read fits the pace, and the transport's own flow control (HTTP/2 windows for
gRPC, paused socket reads for the WebSocket bridge) makes the sender wait, so any client
sending as fast as it can gets every result at the allowed speed. The length and idle
limits end a stream the same gentle way: no more audio is read, the utterance in progress
is finalized and its final result sent, and only then does the stream end with the
limit's status, so a limit never loses what was already said.
"""

from dragoman.errors import StatusError
from dragoman.gateway.errors import StreamLimitError
from dragoman.gateway.settings import StreamLimits


class AudioPace:
    """Checks the audio of one stream against its limits as it arrives."""

    def __init__(self, limits: StreamLimits, *, started_at: float, live: bool) -> None:
        self.limits = limits
        self._started_at = started_at
        self._live = live

    def check(self, audio_s: float) -> StatusError | None:
        """The limit that `audio_s` seconds of audio break, if any."""
        limits = self.limits
        if audio_s > limits.max_stream_s:
            return StreamLimitError(
                f"the stream reached its maximum length of {limits.max_stream_s:g} s of audio; "
                "open a new stream to go on"
            )
        return None

    def hold_s(self, audio_s: float, now: float) -> float:
        """How long to stop reading at `now` so that `audio_s` seconds of audio fit the pace:
        `speedup_burst_s` ahead of real time, then at most `max_speedup` times faster."""
        if not self._live:
            return 0.0
        ahead_s = max(audio_s - self.limits.speedup_burst_s, 0.0)
        return max(self._started_at + ahead_s / self.limits.max_speedup - now, 0.0)

    def idle_error(self) -> StatusError:
        return StreamLimitError(
            f"no audio arrived for {self.limits.idle_timeout_s:g} s; the stream was closed "
            "after the final result of the utterance in progress"
        )
