"""The queue in front of the models of one replica.

Finals are what users keep, so they go first; interims are superseded within a second, so
under pressure they are the ones refused or pushed out. Requests waiting at the same
moment are decoded in one model call when the engine can (`WhisperEngine.batch_key`).
"""

import asyncio
import enum
from collections.abc import Callable, Mapping

import numpy as np

from dragoman.batching import BatchQueue, Done, QueueClosedError, QueueFullError, QueueStats
from dragoman.stt.engine import SAMPLE_RATE_HZ, TranscribeOptions, Transcription, WhisperEngine

__all__ = ["Priority", "QueueClosedError", "QueueFullError", "Scheduler"]

Job = tuple[np.ndarray, TranscribeOptions]


class Priority(enum.IntEnum):
    """Lower values are served first."""

    FINAL = 0
    INTERIM = 1


class Scheduler:
    """Finals before interims, FIFO within a priority, bounded over every model, each model
    drained by one worker that decodes batches of requests in its own thread."""

    def __init__(
        self,
        max_queue: int,
        *,
        max_batch_size: int = 8,
        batch_wait_s: float = 0.005,
        on_discarded: Callable[[str, float], None] = lambda model, seconds: None,
    ) -> None:
        self._engines: dict[str, WhisperEngine] = {}
        self._queue: BatchQueue[Job, Transcription] = BatchQueue(
            max_queue=max_queue,
            max_batch_size=max_batch_size,
            batch_wait_s=batch_wait_s,
            evict=True,
            evicted_message="interim dropped to make room for a final transcription; the "
            "replica is overloaded, send fewer interims or add replicas",
            on_discarded=on_discarded,
        )

    @property
    def engines(self) -> Mapping[str, WhisperEngine]:
        """Models ready to serve, by name, in the order they were added."""
        return self._engines

    @property
    def queued(self) -> int:
        return self._queue.queued

    @property
    def stats(self) -> QueueStats:
        return self._queue.stats

    def add_engine(self, engine: WhisperEngine) -> None:
        """Starts serving a loaded model; call from the event loop."""
        self._engines[engine.name] = engine
        self._queue.add_worker(engine.name, engine.transcribe_batch)

    def submit(
        self, model: str, audio: np.ndarray, options: TranscribeOptions, priority: Priority
    ) -> asyncio.Future[Done[Transcription]]:
        """Queues a request and returns its result to await; cancelling it withdraws it.

        Raises QueueFullError at once when there is no room, and KeyError for a model that
        was never added.
        """
        key = self._engines[model].batch_key(len(audio) / SAMPLE_RATE_HZ, options)
        return self._queue.submit(model, (audio, options), key=key, priority=priority)

    async def close(self) -> None:
        """Fails queued requests, stops the workers and waits for running decodes to end."""
        await self._queue.close()
