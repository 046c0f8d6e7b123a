"""The gRPC face of the STT service: checks requests, queues them, maps errors to codes.

Everything the servicer can refuse is refused before the request waits in the queue, so
an overloaded replica never spends queue slots on requests that would fail anyway.
"""

import logging
from collections.abc import Mapping
from typing import TypeVar

import grpc
import numpy as np
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from opentelemetry import trace

from dragoman.api.stt.v1 import stt_pb2, stt_pb2_grpc
from dragoman.batching import Done
from dragoman.durations import duration
from dragoman.errors import InvalidRequestError
from dragoman.jobs import record_job
from dragoman.loading import LoadStates
from dragoman.metrics import WorkMetrics
from dragoman.serving import ErrorCodes, answer
from dragoman.stt.engine import (
    SAMPLE_RATE_HZ,
    Task,
    TranscribeOptions,
    Transcription,
    UnsupportedOptionError,
)
from dragoman.stt.scheduler import Priority, QueueClosedError, QueueFullError, Scheduler

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_AUDIO_S = 30.0
_BYTES_PER_SAMPLE = 2

#: Temperature fallbacks of the full-window retry of a final that looks like a failure; an
#: interim is superseded within a second, so it takes its one greedy pass as it is.
FINAL_TEMPERATURES = (0.0, 0.4, 0.8)
INTERIM_TEMPERATURES = (0.0,)

_TASKS: dict[int, Task] = {
    stt_pb2.TASK_UNSPECIFIED: "transcribe",
    stt_pb2.TASK_TRANSCRIBE: "transcribe",
    stt_pb2.TASK_TRANSLATE: "translate",
}
_PRIORITIES: dict[int, Priority] = {
    stt_pb2.PRIORITY_UNSPECIFIED: Priority.FINAL,
    stt_pb2.PRIORITY_FINAL: Priority.FINAL,
    stt_pb2.PRIORITY_INTERIM: Priority.INTERIM,
}


#: The status codes of the engine's and the scheduler's errors; a StatusError names its own,
#: and anything else is a bug (UNKNOWN).
STATUS_CODES: ErrorCodes = (
    (UnsupportedOptionError, grpc.StatusCode.INVALID_ARGUMENT),
    (QueueFullError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (QueueClosedError, grpc.StatusCode.UNAVAILABLE),
)


def decode_audio(audio_pcm16: bytes) -> np.ndarray:
    """Checks the wire audio and turns it into the float samples Whisper expects."""
    if not audio_pcm16:
        raise InvalidRequestError(
            "audio_pcm16 is empty; send 16 kHz mono signed 16-bit little-endian PCM"
        )
    if len(audio_pcm16) % _BYTES_PER_SAMPLE:
        raise InvalidRequestError(
            f"audio_pcm16 has an odd number of bytes ({len(audio_pcm16)}); it must hold whole "
            "16-bit samples"
        )
    duration_s = len(audio_pcm16) / _BYTES_PER_SAMPLE / SAMPLE_RATE_HZ
    if duration_s > MAX_AUDIO_S:
        raise InvalidRequestError(
            f"audio is {duration_s:.1f} s long; at most {MAX_AUDIO_S:.0f} s per request, "
            "split longer audio into utterances"
        )
    return np.frombuffer(audio_pcm16, dtype="<i2").astype(np.float32) / 32768.0


class SttServicer(stt_pb2_grpc.SttServiceServicer):
    def __init__(
        self,
        scheduler: Scheduler,
        *,
        default_model: str,
        models: LoadStates,
        final_beam_size: int,
        interim_beam_size: int,
        metrics: WorkMetrics,
        tracer: trace.Tracer,
    ) -> None:
        self._scheduler = scheduler
        self._metrics = metrics
        self._tracer = tracer
        self._default_model = default_model
        self._models = models
        self._beam_sizes = {Priority.FINAL: final_beam_size, Priority.INTERIM: interim_beam_size}
        self._temperatures = {
            Priority.FINAL: FINAL_TEMPERATURES,
            Priority.INTERIM: INTERIM_TEMPERATURES,
        }

    async def Transcribe(
        self, request: stt_pb2.TranscribeRequest, context: grpc.aio.ServicerContext
    ) -> stt_pb2.TranscribeResponse:
        return await answer(
            context,
            self._transcribe(request),
            codes=STATUS_CODES,
            session_id=request.session_id,
            segment_id=request.segment_id,
        )

    async def ListModels(
        self, request: stt_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> stt_pb2.ListModelsResponse:
        return stt_pb2.ListModelsResponse(
            models=[
                stt_pb2.ModelInfo(
                    name=engine.name,
                    english_only=engine.english_only,
                    device=engine.device,
                    compute_type=engine.compute_type,
                    is_default=engine.name == self._default_model,
                    language_codes=engine.languages,
                )
                for engine in self._scheduler.engines.values()
            ]
        )

    async def _transcribe(self, request: stt_pb2.TranscribeRequest) -> stt_pb2.TranscribeResponse:
        audio = decode_audio(request.audio_pcm16)
        model = self._loaded_model(request.model or self._default_model)
        priority = _enum_value(_PRIORITIES, request.priority, stt_pb2.Priority, "priority")
        options = TranscribeOptions(
            language=request.language_code.strip().lower(),
            task=_enum_value(_TASKS, request.task, stt_pb2.Task, "task"),
            beam_size=self._beam_sizes[priority],
            temperatures=self._temperatures[priority],
            word_timestamps=request.word_timestamps,
            initial_prompt=request.initial_prompt,
            retry_full_window=priority is Priority.FINAL,
            timestamps=priority is Priority.FINAL,
        )
        self._scheduler.engines[model].check(options)
        done = await self._scheduler.submit(model, audio, options, priority)
        audio_s = len(audio) / SAMPLE_RATE_HZ
        record_job(
            self._metrics,
            self._tracer,
            worker=model,
            kind=priority.name.lower(),
            queue_s=done.queue_s,
            run_s=done.run_s,
            batch_size=done.batch_size,
            task=options.task,
            audio_s=round(audio_s, 3),
            window_s=done.result.window_s,
            language=done.result.language or options.language,
            **(
                {"full_window_reason": done.result.full_window_reason}
                if done.result.full_window_reason
                else {}
            ),
        )
        return _response(done, model, audio_s)

    def _loaded_model(self, name: str) -> str:
        if name not in self._models.names:
            raise InvalidRequestError(
                f"model {name!r} is not served here; expected one of: "
                f"{', '.join(self._models.names)}, or empty for the default "
                f"{self._default_model!r}"
            )
        self._models.check_ready(name)
        return name


def _enum_value(choices: Mapping[int, T], value: int, enum_type: EnumTypeWrapper, field: str) -> T:
    if value not in choices:
        names = ", ".join(enum_type.Name(number) for number in choices)
        raise InvalidRequestError(f"unknown {field} {value}; expected one of: {names}")
    return choices[value]


def _response(done: Done[Transcription], model: str, audio_s: float) -> stt_pb2.TranscribeResponse:
    transcription = done.result
    return stt_pb2.TranscribeResponse(
        segments=[
            stt_pb2.Segment(
                text=segment.text,
                start_offset=duration(segment.start_s),
                end_offset=duration(segment.end_s),
                avg_logprob=segment.avg_logprob,
                no_speech_prob=segment.no_speech_prob,
                compression_ratio=segment.compression_ratio,
                words=[
                    stt_pb2.Word(
                        word=word.word,
                        start_offset=duration(word.start_s),
                        end_offset=duration(word.end_s),
                        probability=word.probability,
                    )
                    for word in segment.words
                ],
            )
            for segment in transcription.segments
        ],
        language_code=transcription.language,
        language_probability=transcription.language_probability,
        model=model,
        queue_duration=duration(done.queue_s),
        inference_duration=duration(done.run_s),
        audio_duration=duration(audio_s),
        window_duration=duration(transcription.window_s),
        full_window_reason=transcription.full_window_reason,
        batch_size=done.batch_size,
    )
