"""Reads any audio file into LINEAR16 at its own sample rate and channel count.

PyAV decodes every format FFmpeg knows without an ffmpeg binary on the machine. The
client keeps the file's rate and channels so that the server's resampler does the work
it does for every real client.
"""

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

MAX_CHANNELS = 8


@dataclass(frozen=True)
class PcmAudio:
    """Interleaved signed 16-bit little-endian PCM."""

    data: bytes
    sample_rate_hz: int
    channels: int

    @property
    def duration_s(self) -> float:
        return len(self.data) / (2 * self.channels * self.sample_rate_hz)

    def chunks(self, chunk_ms: int) -> list[bytes]:
        """Splits into chunks of whole frames, `chunk_ms` of audio each."""
        step = 2 * self.channels * max(1, self.sample_rate_hz * chunk_ms // 1000)
        return [self.data[i : i + step] for i in range(0, len(self.data), step)]


def read_pcm(
    path: str | Path, *, sample_rate_hz: int | None = None, channels: int | None = None
) -> PcmAudio:
    """Decodes the first audio stream of a file, at its own rate and channels unless asked
    for others (a benchmark joining clips needs one format); more than 8 channels are
    mixed to stereo."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        own = stream.codec_context.channels or 1
        if channels is None:
            channels = own if own <= MAX_CHANNELS else 2
        layout = stream.codec_context.layout.name if channels == own else f"{channels}c"
        layout = {"1c": "mono", "2c": "stereo"}.get(layout, layout)
        rate = sample_rate_hz or stream.codec_context.rate
        resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        pieces: list[np.ndarray] = []
        for frame in container.decode(stream):
            pieces.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        pieces.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
    return PcmAudio(samples.astype("<i2").tobytes(), rate, channels)
