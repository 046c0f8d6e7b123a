"""The queue in front of a replica's model workers: priorities, a bound, and batches.

The STT and translation services both put jobs in front of models that run one call at a
time (on CPU one call already uses every core; on GPU concurrent calls only fight for the
device), and both gain from running several jobs in one call: a GPU encodes sixteen
utterances, or translates sixteen sentences, in little more time than one. So each worker
takes the oldest job of the most urgent priority and, within `batch_wait_s` of that job's
arrival, every other waiting job it can share a call with (the same `key`), up to
`max_batch_size`; while a batch runs the next one fills up on its own. Calls run in the
worker's own thread, so the event loop never blocks and workers do not hold each other up.

Callers only see `submit` and the future it returns; cancelling that future withdraws the
job. Model time spent on a job whose caller had gone by the time it finished is reported
to `on_discarded`: work thrown away is measured, not guessed.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class QueueFullError(Exception):
    """No room for the job; the message says what the caller can do."""


class QueueClosedError(Exception):
    """The replica is shutting down and runs no more jobs."""


@dataclass(frozen=True)
class Done(Generic[R]):
    """A job's result and what it cost."""

    result: R
    queue_s: float
    """Seconds between submit and the start of the model call."""
    run_s: float
    """Seconds the model call took, for the whole batch."""
    batch_size: int
    """The size of the model call: its jobs' sizes summed (jobs, or texts to translate)."""


@dataclass
class QueueStats:
    """Counters since start, for logs and tests."""

    completed: int = 0
    batches: int = 0
    skipped_cancelled: int = 0
    """Jobs whose caller had gone before their batch ran."""
    evicted: int = 0
    """Jobs pushed out of a full queue by a more urgent one."""
    rejected: int = 0
    """Jobs refused because the queue was full."""


@dataclass(eq=False)
class _Job(Generic[T, R]):
    """Compared by identity: a payload (an array of audio) has no truth value to compare."""

    payload: T
    key: Hashable
    priority: int
    size: int
    future: asyncio.Future[Done[R]]
    submitted_s: float = field(default_factory=time.monotonic)


def _closed_error() -> QueueClosedError:
    return QueueClosedError("the replica is shutting down; retry on another replica")


@dataclass
class _Worker(Generic[T, R]):
    run: Callable[[list[T]], list[R]]
    executor: ThreadPoolExecutor
    jobs: deque[_Job[T, R]] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


class BatchQueue(Generic[T, R]):
    """Jobs of every worker, bounded together; lower `priority` values run first.

    With `evict=True`, a job that finds the queue full takes the place of the oldest job
    of the least urgent priority below its own, which fails with `evicted_message`.
    """

    def __init__(
        self,
        *,
        max_queue: int,
        max_batch_size: int,
        batch_wait_s: float,
        noun: str = "jobs",
        evict: bool = False,
        evicted_message: str = "",
        on_discarded: Callable[[str, float], None] = lambda worker, seconds: None,
    ) -> None:
        self.max_queue = max_queue
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_s
        self.stats = QueueStats()
        self._noun = noun
        self._evict = evict
        self._evicted_message = evicted_message
        self._on_discarded = on_discarded
        self._workers: dict[str, _Worker[T, R]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def workers(self) -> Mapping[str, Callable[[list[T]], list[R]]]:
        """The workers' batch functions, by name, in the order they were added."""
        return {name: worker.run for name, worker in self._workers.items()}

    @property
    def queued(self) -> int:
        """Jobs waiting whose caller is still there: a withdrawn job holds no slot."""
        return sum(
            not job.future.done() for worker in self._workers.values() for job in worker.jobs
        )

    def add_worker(self, name: str, run: Callable[[list[T]], list[R]]) -> None:
        """Starts serving `name`; `run` maps a batch of payloads to their results, in
        order, and is called in the worker's own thread. Call from the event loop."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._workers[name] = _Worker(run, executor)
        self._tasks.append(asyncio.create_task(self._work(name), name=f"worker {name}"))

    def submit(
        self, worker: str, payload: T, *, key: Hashable = None, priority: int = 0, size: int = 1
    ) -> asyncio.Future[Done[R]]:
        """Queues a job and returns its result to await; cancelling it withdraws the job.

        `size` is what the job counts towards `max_batch_size` (the texts of a request).
        Raises QueueFullError at once when there is no room, and KeyError for a worker that
        was never added.
        """
        if self._closed:
            raise _closed_error()
        queue = self._workers[worker]
        if self.queued >= self.max_queue:
            self._make_room(priority)
        job: _Job[T, R] = _Job(
            payload, key, priority, size, asyncio.get_running_loop().create_future()
        )
        queue.jobs.append(job)
        queue.wakeup.set()
        return job.future

    def _make_room(self, priority: int) -> None:
        live = [
            (job.priority, -job.submitted_s, worker.jobs, job)
            for worker in self._workers.values()
            for job in worker.jobs
            if not job.future.done() and job.priority > priority
        ]
        if self._evict and live:
            _, _, jobs, evicted = max(live, key=lambda entry: entry[:2])
            jobs.remove(evicted)
            self.stats.evicted += 1
            evicted.future.set_exception(QueueFullError(self._evicted_message))
            return
        self.stats.rejected += 1
        raise QueueFullError(
            f"the queue is full ({self.max_queue} {self._noun} waiting); retry with backoff or "
            "add replicas"
        )

    def _drop_withdrawn(self, worker: _Worker[T, R]) -> None:
        withdrawn = sum(job.future.done() for job in worker.jobs)
        if withdrawn:
            self.stats.skipped_cancelled += withdrawn
            live = [job for job in worker.jobs if not job.future.done()]
            worker.jobs.clear()
            worker.jobs.extend(live)

    def _batch_of(self, worker: _Worker[T, R], head: _Job[T, R]) -> list[_Job[T, R]]:
        """The head and the waiting jobs that share its call, most urgent and oldest first."""
        batch, size = [head], head.size
        companions = sorted(
            (job for job in worker.jobs if job is not head and job.key == head.key),
            key=lambda job: (job.priority, job.submitted_s),
        )
        for job in companions:
            if size + job.size > self.max_batch_size:
                break
            batch.append(job)
            size += job.size
        return batch

    async def _work(self, name: str) -> None:
        worker = self._workers[name]
        while True:
            self._drop_withdrawn(worker)
            if not worker.jobs:
                worker.wakeup.clear()
                await worker.wakeup.wait()
                continue
            head = min(worker.jobs, key=lambda job: (job.priority, job.submitted_s))
            deadline_s = head.submitted_s + self.batch_wait_s
            while sum(j.size for j in self._batch_of(worker, head)) < self.max_batch_size:
                remaining_s = deadline_s - time.monotonic()
                if remaining_s <= 0:
                    break
                worker.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining_s):
                        await worker.wakeup.wait()
            self._drop_withdrawn(worker)
            if head.future.done():
                continue
            batch = self._batch_of(worker, head)
            for job in batch:
                worker.jobs.remove(job)
            await self._run(name, worker, batch)

    async def _run(self, name: str, worker: _Worker[T, R], batch: list[_Job[T, R]]) -> None:
        started_s = time.monotonic()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                worker.executor, worker.run, [job.payload for job in batch]
            )
        except asyncio.CancelledError:
            _fail(batch, _closed_error())
            raise
        except Exception as error:
            logger.exception("worker %s failed on a batch of %d", name, len(batch))
            _fail(batch, error)
            return
        run_s = time.monotonic() - started_s
        self.stats.batches += 1
        total = sum(job.size for job in batch)
        for job, result in zip(batch, results, strict=True):
            self.stats.completed += 1
            if job.future.done():
                self._on_discarded(name, run_s * job.size / total)
                continue
            job.future.set_result(Done(result, started_s - job.submitted_s, run_s, total))

    async def close(self) -> None:
        """Fails queued jobs, stops the workers and waits for the running calls to end."""
        self._closed = True
        for worker in self._workers.values():
            _fail(list(worker.jobs), _closed_error())
            worker.jobs.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for worker in self._workers.values():
            await asyncio.to_thread(worker.executor.shutdown)


def _fail(jobs: list[_Job], error: Exception) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error)
