"""The limits a live stream's audio must keep: pace, duration and silence of the sender.

Each limit ends a stream the same gentle way: no more audio is read, the utterance in
progress is finalized and its final result sent, and only then does the stream end with
the limit's status, so a limit never loses what was already said.
"""

from dataclasses import dataclass

from server.errors import GatewayError, OverloadedError, StreamLimitError


@dataclass(frozen=True)
class StreamLimits:
    max_stream_s: float
    """Audio seconds a stream may carry."""
    idle_timeout_s: float
    """Longest gap between two audio messages."""
    max_speedup: float
    """How many times faster than real time audio may arrive, past the burst."""
    speedup_burst_s: float
    """Audio seconds a stream may be ahead of real time before the pace counts."""


class AudioPace:
    """Checks the audio of one stream against its limits as it arrives."""

    def __init__(self, limits: StreamLimits, *, started_at: float, live: bool) -> None:
        self.limits = limits
        self._started_at = started_at
        self._live = live

    def check(self, audio_s: float, now: float) -> GatewayError | None:
        """The limit `audio_s` seconds of audio received by `now` breaks, if any."""
        limits = self.limits
        if audio_s > limits.max_stream_s:
            return StreamLimitError(
                f"the stream reached its maximum length of {limits.max_stream_s:g} s of audio; "
                "open a new stream to go on"
            )
        allowed_s = limits.speedup_burst_s + (now - self._started_at) * limits.max_speedup
        if self._live and audio_s > allowed_s:
            return OverloadedError(
                f"audio arrives faster than {limits.max_speedup:g} times real time (after "
                f"{limits.speedup_burst_s:g} s of burst); send it at most that fast, or use "
                "Recognize for a whole file"
            )
        return None

    def idle_error(self) -> GatewayError:
        return StreamLimitError(
            f"no audio arrived for {self.limits.idle_timeout_s:g} s; the stream was closed "
            "after the final result of the utterance in progress"
        )
