"""The queue in front of the models of one replica.

On CPU one decode already uses every core, and on GPU concurrent decodes only fight for
the same device, so each model runs one job at a time and the order of jobs is what sets
latency. Finals are what users keep, so they go first; interims are superseded within a
second, so under pressure they are the ones refused or dropped. Callers only see
`submit`, so a worker that merges several queued jobs into one batched model call can
replace `_run_one` without changing them.
"""

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from stt.engine import TranscribeOptions, Transcription, WhisperEngine

logger = logging.getLogger(__name__)


class Priority(enum.IntEnum):
    """Lower values are served first."""

    FINAL = 0
    INTERIM = 1


class QueueFullError(Exception):
    """No room for the job; the message says what the caller can do."""


class SchedulerClosedError(Exception):
    """The replica is shutting down and runs no more jobs."""


@dataclass(frozen=True)
class Completed:
    transcription: Transcription
    #: Seconds between submit and the start of inference.
    queue_s: float
    #: Seconds the model ran.
    inference_s: float


@dataclass
class _Job:
    engine: WhisperEngine
    audio: np.ndarray
    options: TranscribeOptions
    priority: Priority
    future: asyncio.Future[Completed]
    submitted_s: float = field(default_factory=time.monotonic)


@dataclass
class SchedulerStats:
    """Counters since start, for logs and metrics."""

    completed: int = 0
    #: Jobs whose caller had gone before they ran.
    skipped_cancelled: int = 0
    #: Interims pushed out of a full queue by a final.
    evicted: int = 0
    #: Jobs refused because the queue was full.
    rejected: int = 0


def _closed_error() -> SchedulerClosedError:
    return SchedulerClosedError("the replica is shutting down; retry on another replica")


class Scheduler:
    """Priority queues per model (finals first, FIFO within a priority), bounded together,
    each model drained by one worker task that runs jobs in its own thread."""

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self.stats = SchedulerStats()
        self._engines: dict[str, WhisperEngine] = {}
        self._queues: dict[str, dict[Priority, deque[_Job]]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def engines(self) -> Mapping[str, WhisperEngine]:
        """Models ready to serve, by name, in the order they were added."""
        return self._engines

    @property
    def queued(self) -> int:
        """Jobs waiting whose caller is still there: a job withdrawn (its interim went
        stale, its stream ended) holds no slot, though it stays in its deque until a
        worker skips it."""
        return sum(
            not job.future.done()
            for queues in self._queues.values()
            for queue in queues.values()
            for job in queue
        )

    def add_engine(self, engine: WhisperEngine) -> None:
        """Starts serving a loaded model; call from the event loop."""
        name = engine.name
        self._engines[name] = engine
        self._queues[name] = {priority: deque() for priority in Priority}
        self._wakeups[name] = asyncio.Event()
        self._executors[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"stt-{name}")
        self._workers.append(asyncio.create_task(self._work(name), name=f"stt-worker-{name}"))

    def submit(
        self, model: str, audio: np.ndarray, options: TranscribeOptions, priority: Priority
    ) -> asyncio.Future[Completed]:
        """Queues a job and returns its result to await; cancelling it withdraws the job.

        Raises QueueFullError at once when there is no room, and KeyError for a model that
        was never added.
        """
        if self._closed:
            raise _closed_error()
        engine = self._engines[model]
        self._drop_withdrawn()
        if self.queued >= self.max_queue:
            self._make_room(priority)
        job = _Job(engine, audio, options, priority, asyncio.get_running_loop().create_future())
        self._queues[model][priority].append(job)
        self._wakeups[model].set()
        return job.future

    def _drop_withdrawn(self) -> None:
        """Forgets the jobs whose caller has gone, so that eviction picks a live one."""
        for queues in self._queues.values():
            for priority, queue in queues.items():
                if any(job.future.done() for job in queue):
                    self.stats.skipped_cancelled += sum(job.future.done() for job in queue)
                    queues[priority] = deque(job for job in queue if not job.future.done())

    def _make_room(self, priority: Priority) -> None:
        interims = [q[Priority.INTERIM] for q in self._queues.values() if q[Priority.INTERIM]]
        if priority is Priority.FINAL and interims:
            oldest = min(interims, key=lambda q: q[0].submitted_s)
            evicted = oldest.popleft()
            self.stats.evicted += 1
            if not evicted.future.done():
                evicted.future.set_exception(
                    QueueFullError(
                        "interim dropped to make room for a final transcription; the replica is "
                        "overloaded, send fewer interims or add replicas"
                    )
                )
            return
        self.stats.rejected += 1
        raise QueueFullError(
            f"the queue is full ({self.max_queue} jobs waiting"
            + (", all finals" if priority is Priority.FINAL else "")
            + "); retry with backoff or add replicas"
        )

    def _next_job(self, model: str) -> _Job | None:
        for queue in self._queues[model].values():
            if queue:
                return queue.popleft()
        return None

    async def _work(self, model: str) -> None:
        wakeup = self._wakeups[model]
        while True:
            job = self._next_job(model)
            if job is None:
                wakeup.clear()
                await wakeup.wait()
                continue
            if job.future.done():
                self.stats.skipped_cancelled += 1
                continue
            await self._run_one(model, job)

    async def _run_one(self, model: str, job: _Job) -> None:
        started_s = time.monotonic()
        try:
            transcription = await asyncio.get_running_loop().run_in_executor(
                self._executors[model], job.engine.transcribe, job.audio, job.options
            )
        except asyncio.CancelledError:
            if not job.future.done():
                job.future.set_exception(_closed_error())
            raise
        except Exception as error:
            if not job.future.done():
                job.future.set_exception(error)
            return
        finished_s = time.monotonic()
        self.stats.completed += 1
        if not job.future.done():
            job.future.set_result(
                Completed(transcription, started_s - job.submitted_s, finished_s - started_s)
            )

    async def close(self) -> None:
        """Fails queued jobs, stops the workers and waits for the running decodes to end."""
        self._closed = True
        for queues in self._queues.values():
            for queue in queues.values():
                for job in queue:
                    if not job.future.done():
                        job.future.set_exception(_closed_error())
                queue.clear()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for executor in self._executors.values():
            await asyncio.to_thread(executor.shutdown)
