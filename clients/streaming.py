"""Streams an audio file to StreamingRecognize as a microphone would, and times it;
resumes the session when the connection breaks.

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

import grpc

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.clients.audio_file import PcmAudio

CHUNK_MS = 100
RESUMABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION)
"""A lost connection, or a session the server has not yet seen detached."""
TRANSPORT_FAILURES = ("Internal error from Core", "Stream removed")
"""How grpc.aio's INTERNAL begins when the connection broke while a message was being sent,
or a proxy reset the stream (Envoy, when the gateway behind it died): failures of the
transport, not answers of the server (whose INTERNAL says more)."""
RESUME_BACKOFF_S = 0.1
"""The wait before the second try; the first goes at once (the gateway waits a moment for
the connection it replaces to be seen lost)."""
MAX_BACKOFF_S = 2.0
MAX_RESUME_ATTEMPTS = 8


@dataclass
class SendLog:
    """When each chunk of audio left the client, by the stream time it ends at."""

    chunk_end_s: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    resumed_at: list[float] = field(default_factory=list)
    """Monotonic times at which the server answered a resume of the session."""

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


@dataclass
class _Resumption:
    """What a client needs to resume its session: the token, the last response it got,
    and from where the server still needs its audio."""

    token: str = ""
    last_sequence: int = 0
    accounted_s: float = 0.0
    attempts: int = 0
    elsewhere: bool = False
    """The gateway handed the session over: resume at once, without backoff."""


async def _requests(
    first: speech_pb2.StreamingRecognizeRequest,
    audio: PcmAudio,
    log: SendLog,
    *,
    realtime: bool,
    chunk_ms: int,
    started: float,
    from_s: float,
) -> AsyncIterator[speech_pb2.StreamingRecognizeRequest]:
    """The first message, then the audio from `from_s` on, paced from `started`: audio
    captured before now (resent after a resume) leaves at once."""
    yield first
    frame = 2 * audio.channels
    start = round(from_s * audio.sample_rate_hz) * frame
    bytes_per_s = frame * audio.sample_rate_hz
    step = frame * max(1, audio.sample_rate_hz * chunk_ms // 1000)
    for offset in range(start, len(audio.data), step):
        chunk = audio.data[offset : offset + step]
        position_s = (offset + len(chunk)) / bytes_per_s
        if realtime:
            await asyncio.sleep(max(0.0, started + position_s - time.monotonic()))
        if not log.chunk_end_s or position_s > log.chunk_end_s[-1]:
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
    resume: bool = True,
) -> AsyncIterator[tuple[float, speech_pb2.StreamingRecognizeResponse]]:
    """Yields (arrival time, response) until the server closes the stream.

    When the connection breaks (UNAVAILABLE), the session is resumed at once, then with
    backoff (a handover, as a gateway that shuts down makes, is not counted): the
    audio from the last checkpoint is sent again and the responses the server sends
    again are skipped, so the caller sees one unbroken stream. `resume=False` raises
    instead. The audio is a file, so it is at hand to resend from any offset.
    """
    log = log or SendLog()
    state = _Resumption()
    started = time.monotonic()
    first = speech_pb2.StreamingRecognizeRequest(streaming_config=config)
    while True:
        call = stub.StreamingRecognize(
            _requests(
                first,
                audio,
                log,
                realtime=realtime,
                chunk_ms=chunk_ms,
                started=started,
                from_s=state.accounted_s,
            )
        )
        try:
            async for response in call:
                if response.HasField("session"):
                    state.token = state.token or response.session.resume_token
                    if response.session.resumed:
                        state.attempts = 0
                        log.resumed_at.append(time.monotonic())
                        continue
                elif response.sequence <= state.last_sequence:
                    continue
                state.last_sequence = max(state.last_sequence, response.sequence)
                if response.HasField("checkpoint"):
                    state.accounted_s = response.checkpoint.accounted_offset.ToNanoseconds() / 1e9
                    state.elsewhere = response.checkpoint.resume_elsewhere
                yield time.monotonic(), response
            return
        except grpc.aio.AioRpcError as error:
            if not (resume and state.token and _connection_lost(error)):
                raise
            if state.attempts >= MAX_RESUME_ATTEMPTS:
                raise
            if state.attempts and not state.elsewhere:
                backoff_s = RESUME_BACKOFF_S * 2 ** (state.attempts - 1)
                await asyncio.sleep(min(backoff_s, MAX_BACKOFF_S))
            state.attempts += 0 if state.elsewhere else 1
            state.elsewhere = False
        first = speech_pb2.StreamingRecognizeRequest(
            resume=speech_pb2.ResumeSession(
                resume_token=state.token, last_sequence=state.last_sequence
            )
        )
        first.resume.audio_offset.FromNanoseconds(round(state.accounted_s * 1e9))


def _connection_lost(error: grpc.aio.AioRpcError) -> bool:
    return error.code() in RESUMABLE or (
        error.code() == grpc.StatusCode.INTERNAL
        and (error.details() or "").startswith(TRANSPORT_FAILURES)
    )
