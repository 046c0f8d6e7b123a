"""Decoding the client's audio into the one format the pipeline uses: 16 kHz mono float32.

Everything downstream (VAD, segmenter, Whisper) works on 16 kHz mono float32 in [-1, 1], so
this is the only module that knows about client encodings. Raw LINEAR16 is resampled with
soxr's streaming resampler, which carries its filter state across chunks, so chunk boundaries
leave no clicks and the output length stays exact (stream time = samples / 16000). Compressed
audio goes through FFmpeg (PyAV) because it already decodes every container and codec a
client is likely to send; it reads from a blocking queue in a worker thread so that chunks
can be fed as they arrive without knowing the container's framing.
"""

from __future__ import annotations

import io
import logging
import queue
import threading

import av
import numpy as np
import soxr

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
"""The pipeline's sample rate: what every decoder outputs."""

MIN_SAMPLE_RATE_HZ = 8000
MAX_SAMPLE_RATE_HZ = 48000
MAX_CHANNELS = 8
ENCODINGS = ("LINEAR16", "COMPRESSED")

_BYTES_PER_SAMPLE = 2
_INT16_FULL_SCALE = 32768.0


class AudioFormatError(ValueError):
    """The client's audio or its declared format cannot be used; the message says how to fix it."""


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.float32)


class PcmDecoder:
    """LINEAR16 (signed 16-bit little-endian, interleaved) to 16 kHz mono float32, streaming."""

    def __init__(self, sample_rate_hz: int, channels: int) -> None:
        if not MIN_SAMPLE_RATE_HZ <= sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
            raise AudioFormatError(
                f"sample_rate_hertz {sample_rate_hz} is out of range: valid values are "
                f"{MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ}"
            )
        if not 1 <= channels <= MAX_CHANNELS:
            raise AudioFormatError(
                f"audio_channel_count {channels} is out of range: valid values are 1-{MAX_CHANNELS}"
            )
        self.sample_rate_hz = sample_rate_hz
        self.channels = channels
        self._frame_bytes = _BYTES_PER_SAMPLE * channels
        # At 16 kHz the resampler would only add delay and a filter tail.
        self._resampler: soxr.ResampleStream | None = None
        if sample_rate_hz != SAMPLE_RATE_HZ:
            self._resampler = soxr.ResampleStream(
                sample_rate_hz, SAMPLE_RATE_HZ, 1, dtype="float32", quality="HQ"
            )

    def decode(self, chunk: bytes) -> np.ndarray:
        """Returns the 16 kHz samples ready so far; may be empty while the resampler fills."""
        if len(chunk) % self._frame_bytes:
            raise AudioFormatError(
                f"audio chunk of {len(chunk)} bytes is not a whole number of LINEAR16 frames: "
                f"with {self.channels} channel(s) each frame is {self._frame_bytes} bytes"
            )
        frames = np.frombuffer(chunk, dtype="<i2").reshape(-1, self.channels)
        mono = frames.mean(axis=1, dtype=np.float32) / np.float32(_INT16_FULL_SCALE)
        if self._resampler is None:
            return mono
        return self._resampler.resample_chunk(mono)

    def flush(self) -> np.ndarray:
        """Returns the resampler's tail; call once at end of stream."""
        if self._resampler is None:
            return _empty()
        return self._resampler.resample_chunk(_empty(), last=True)

    def close(self) -> None:
        self._resampler = None


class _ChunkReader(io.RawIOBase):
    """A blocking, non-seekable file over chunks put from another thread, for FFmpeg to read."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending = b""
        self._at_end = False

    def put(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def end(self) -> None:
        """Makes reads return end-of-file once the queued chunks are consumed."""
        self._chunks.put(None)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:
        while not self._pending and not self._at_end:
            chunk = self._chunks.get()
            if chunk is None:
                self._at_end = True
            else:
                self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class CompressedDecoder:
    """Any format FFmpeg can decode from a byte stream (Ogg/Opus, WebM, MP3, FLAC, WAV...).

    FFmpeg pulls bytes at its own pace and needs to see the start of the container before it
    can say anything, so decoding runs in a worker thread that blocks on a queue of the
    client's chunks; `decode` never blocks the caller.
    """

    def __init__(self, flush_timeout_s: float = 10.0) -> None:
        """flush_timeout_s: how long `flush` waits for FFmpeg to finish after the last chunk."""
        self.flush_timeout_s = flush_timeout_s
        self._input = _ChunkReader()
        self._decoded: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
        self._error: str | None = None
        self._stopping = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="compressed-decoder", daemon=True)
        self._thread.start()

    def decode(self, chunk: bytes) -> np.ndarray:
        """Queues the bytes and returns whatever has been decoded so far (often empty)."""
        self._raise_if_failed()
        if self._ended:
            raise RuntimeError("decode() called after flush() or close()")
        self._input.put(bytes(chunk))
        return self._drain()

    def flush(self) -> np.ndarray:
        """Ends the input, waits for the decoder to finish and returns the rest of the audio."""
        if not self._ended:
            self._ended = True
            self._input.end()
        self._thread.join(self.flush_timeout_s)
        if self._thread.is_alive():
            self._stopping.set()
            raise AudioFormatError(
                "could not decode the audio as a compressed format: decoding took longer "
                f"than {self.flush_timeout_s} s"
            )
        self._raise_if_failed()
        return self._drain()

    def close(self) -> None:
        """Stops the worker thread, also mid-stream (client gone); safe to call twice."""
        self._stopping.set()
        if not self._ended:
            self._ended = True
            self._input.end()
        self._thread.join(self.flush_timeout_s)
        if self._thread.is_alive():
            logger.warning(
                "compressed audio decoder thread did not stop within %s s", self.flush_timeout_s
            )

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise AudioFormatError(
                f"could not decode the audio as a compressed format: {self._error}"
            )

    def _drain(self) -> np.ndarray:
        parts = []
        while True:
            try:
                parts.append(self._decoded.get_nowait())
            except queue.Empty:
                break
        return np.concatenate(parts) if parts else _empty()

    def _run(self) -> None:
        try:
            self._decode_all()
        except av.FFmpegError as exc:
            self._fail(exc.strerror or str(exc))
        except AudioFormatError as exc:
            self._fail(str(exc))

    def _fail(self, reason: str) -> None:
        # Errors after close() come from cutting FFmpeg's input short, not from the client.
        if not self._stopping.is_set():
            self._error = reason
            logger.info("compressed audio could not be decoded: %s", reason)

    def _decode_all(self) -> None:
        with av.open(self._input, mode="r") as container:
            if not container.streams.audio:
                raise AudioFormatError("the stream contains no audio track")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE_HZ)
            for frame in container.decode(container.streams.audio[0]):
                if self._stopping.is_set():
                    return
                self._emit(resampler.resample(frame))
            self._emit(resampler.resample(None))

    def _emit(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            self._decoded.put(frame.to_ndarray().reshape(-1).astype(np.float32, copy=False))


def make_decoder(
    encoding: str, sample_rate_hz: int, channels: int
) -> PcmDecoder | CompressedDecoder:
    """Picks the decoder for the client's declared encoding.

    For COMPRESSED the rate and channel count come from the container, so the declared ones
    are not used.
    """
    if encoding == "LINEAR16":
        return PcmDecoder(sample_rate_hz, channels)
    if encoding == "COMPRESSED":
        return CompressedDecoder()
    raise AudioFormatError(
        f"encoding {encoding!r} is not supported: valid values are {', '.join(ENCODINGS)}"
    )
