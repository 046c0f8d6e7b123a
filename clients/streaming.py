"""Streams an audio file to StreamingRecognize as a microphone would, and times it.

Chunks leave at the pace they would be captured (a chunk of 100 ms leaves 100 ms after
the previous one), or as fast as the server takes them. Each response is paired with its
arrival time, and the send time of every chunk is kept, so that the benchmark can tell
how long after a moment of speech was sent its result arrived.
"""

import asyncio
import bisect
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from clients.audio_file import PcmAudio
from dragoman.speech.v1 import speech_pb2, speech_pb2_grpc

CHUNK_MS = 100


@dataclass
class SendLog:
    """When each chunk of audio left the client, by the stream time it ends at."""

    chunk_end_s: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)

    def sent_time_of(self, stream_time_s: float) -> float:
        """Monotonic time at which the audio up to `stream_time_s` had been sent."""
        index = bisect.bisect_left(self.chunk_end_s, stream_time_s - 1e-6)
        return self.sent_at[min(index, len(self.sent_at) - 1)]


def streaming_config(
    audio: PcmAudio,
    *,
    language_code: str = "",
    model: str = "",
    interim_results: bool = True,
    word_time_offsets: bool = False,
    speech_events: bool = True,
    translation_targets: list[str] | None = None,
) -> speech_pb2.StreamingRecognitionConfig:
    return speech_pb2.StreamingRecognitionConfig(
        config=speech_pb2.RecognitionConfig(
            encoding=speech_pb2.AUDIO_ENCODING_LINEAR16,
            sample_rate_hertz=audio.sample_rate_hz,
            audio_channel_count=audio.channels,
            language_code=language_code,
            model=model,
            enable_word_time_offsets=word_time_offsets,
            translation_language_codes=translation_targets or [],
        ),
        interim_results=interim_results,
        enable_speech_events=speech_events,
    )


async def _requests(
    config: speech_pb2.StreamingRecognitionConfig,
    audio: PcmAudio,
    log: SendLog,
    *,
    realtime: bool,
    chunk_ms: int,
) -> AsyncIterator[speech_pb2.StreamingRecognizeRequest]:
    yield speech_pb2.StreamingRecognizeRequest(streaming_config=config)
    started = time.monotonic()
    position_s = 0.0
    bytes_per_s = 2 * audio.channels * audio.sample_rate_hz
    for chunk in audio.chunks(chunk_ms):
        position_s += len(chunk) / bytes_per_s
        if realtime:
            await asyncio.sleep(max(0.0, started + position_s - time.monotonic()))
        log.chunk_end_s.append(position_s)
        log.sent_at.append(time.monotonic())
        yield speech_pb2.StreamingRecognizeRequest(audio_content=chunk)


async def stream_audio(
    stub: speech_pb2_grpc.SpeechServiceStub,
    audio: PcmAudio,
    config: speech_pb2.StreamingRecognitionConfig,
    *,
    realtime: bool = True,
    chunk_ms: int = CHUNK_MS,
    log: SendLog | None = None,
) -> AsyncIterator[tuple[float, speech_pb2.StreamingRecognizeResponse]]:
    """Yields (arrival time, response) until the server closes the stream."""
    call = stub.StreamingRecognize(
        _requests(config, audio, log or SendLog(), realtime=realtime, chunk_ms=chunk_ms)
    )
    async for response in call:
        yield time.monotonic(), response
