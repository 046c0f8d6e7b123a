"""Helpers for driving StreamingRecognize from synchronous tests."""

import time
import wave
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from dragoman.api.speech.v1 import speech_pb2
from dragoman.clients.audio_file import PcmAudio


def read_wav(path: Path) -> PcmAudio:
    with wave.open(str(path)) as wav:
        return PcmAudio(wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels())


def silence(seconds: float, sample_rate_hz: int) -> np.ndarray:
    return np.zeros(int(seconds * sample_rate_hz), dtype=np.int16)


def samples(audio: PcmAudio) -> np.ndarray:
    return np.frombuffer(audio.data, dtype="<i2")


def config_request(
    audio: PcmAudio | None = None, **streaming: object
) -> speech_pb2.StreamingRecognizeRequest:
    recognition = speech_pb2.RecognitionConfig(
        encoding=speech_pb2.AUDIO_ENCODING_LINEAR16,
        sample_rate_hertz=audio.sample_rate_hz if audio else 16000,
        audio_channel_count=audio.channels if audio else 1,
        language_code="en",
    )
    return speech_pb2.StreamingRecognizeRequest(
        streaming_config=speech_pb2.StreamingRecognitionConfig(config=recognition, **streaming)
    )


def audio_requests(
    audio: PcmAudio, chunk_ms: int = 100
) -> Iterator[speech_pb2.StreamingRecognizeRequest]:
    for chunk in audio.chunks(chunk_ms):
        yield speech_pb2.StreamingRecognizeRequest(audio_content=chunk)


def stream(
    stub, audio: PcmAudio, *, chunk_ms: int = 100, **streaming: object
) -> list[speech_pb2.StreamingRecognizeResponse]:
    requests: Iterable = [config_request(audio, **streaming), *audio_requests(audio, chunk_ms)]
    return list(stub.StreamingRecognize(iter(requests), timeout=120))


def paced(requests: Iterable, pace_s: float) -> Iterator:
    """Sends each audio chunk `pace_s` after the previous one, like a live source."""
    for request in requests:
        if request.HasField("audio_content"):
            time.sleep(pace_s)
        yield request


def finals(responses: list[speech_pb2.StreamingRecognizeResponse]) -> list:
    return [r.result for r in responses if r.HasField("result") and r.result.is_final]


def seconds(duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def read_float(path: Path) -> np.ndarray:
    """A 16 kHz clip as float32 in [-1, 1], as the gateway's VAD sees it."""
    audio = read_wav(path)
    assert audio.sample_rate_hz == 16000
    return samples(audio).astype(np.float32) / 32768
