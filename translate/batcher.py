"""Micro-batching of concurrent translation requests, one worker per backend.

A seq2seq model translates sixteen sentences in little more time than one, and the gateway
sends one short request per final transcript of every stream, so requests for the same
backend and language pair that arrive within a few milliseconds share one model call. The
first request of a batch waits at most `batch_window_ms` for company; while a batch runs
the next one fills up on its own. Each backend runs one batch at a time in its own thread,
so the event loop never blocks and backends do not hold each other up.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from translate.backends.base import BackendError, TranslationBackend

logger = logging.getLogger(__name__)


class QueueFullError(Exception):
    """No room for the request; the message says what the caller can do."""


class BatcherClosedError(Exception):
    """The replica is shutting down and runs no more batches."""


@dataclass(frozen=True)
class Translated:
    """One request's translations and what it cost."""

    translations: list[str]
    backend: str
    #: Seconds between submit and the start of the model call.
    queue_s: float
    #: Seconds the model ran on the whole batch.
    inference_s: float
    #: Texts in the batch, this request's and others'.
    batch_size: int


@dataclass
class BatcherStats:
    """Counters since start, for logs and metrics."""

    completed: int = 0
    batches: int = 0
    #: Requests whose caller had gone before their batch ran.
    skipped_cancelled: int = 0
    #: Requests refused because the queue was full.
    rejected: int = 0


@dataclass
class _Request:
    texts: list[str]
    source: str
    target: str
    future: asyncio.Future[Translated]
    submitted_s: float = field(default_factory=time.monotonic)


def _closed_error() -> BatcherClosedError:
    return BatcherClosedError("the replica is shutting down; retry on another replica")


class Batcher:
    """FIFO queues per backend, bounded together, each drained in batches of one pair."""

    def __init__(self, *, max_batch_size: int, batch_window_ms: float, max_queue: int) -> None:
        self.max_batch_size = max_batch_size
        self.batch_window_s = batch_window_ms / 1000
        self.max_queue = max_queue
        self.stats = BatcherStats()
        self._backends: dict[str, TranslationBackend] = {}
        self._queues: dict[str, deque[_Request]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def backends(self) -> Mapping[str, TranslationBackend]:
        """Backends ready to serve, by name, in the order they were added."""
        return self._backends

    @property
    def queued(self) -> int:
        """Requests waiting whose caller is still there; the others hold no queue slot."""
        return sum(
            not request.future.done() for queue in self._queues.values() for request in queue
        )

    def add_backend(self, backend: TranslationBackend) -> None:
        """Starts serving a loaded backend; call from the event loop."""
        name = backend.name
        self._backends[name] = backend
        self._queues[name] = deque()
        self._wakeups[name] = asyncio.Event()
        self._executors[name] = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"translate-{name}"
        )
        self._workers.append(asyncio.create_task(self._work(name), name=f"translate-{name}"))

    def submit(
        self, backend: str, texts: list[str], source: str, target: str
    ) -> asyncio.Future[Translated]:
        """Queues a request and returns its result to await; cancelling it withdraws it.

        Raises QueueFullError at once when there is no room, and KeyError for a backend
        that was never added.
        """
        if self._closed:
            raise _closed_error()
        queue = self._queues[backend]
        if self.queued >= self.max_queue:
            self.stats.rejected += 1
            raise QueueFullError(
                f"the queue is full ({self.max_queue} requests waiting); retry with backoff "
                "or add replicas"
            )
        request = _Request(texts, source, target, asyncio.get_running_loop().create_future())
        queue.append(request)
        self._wakeups[backend].set()
        return request.future

    async def _work(self, name: str) -> None:
        queue = self._queues[name]
        wakeup = self._wakeups[name]
        while True:
            if not queue:
                wakeup.clear()
                await wakeup.wait()
                continue
            head = queue[0]
            pair = (head.source, head.target)
            deadline_s = head.submitted_s + self.batch_window_s
            while self._texts_waiting(queue, pair) < self.max_batch_size:
                remaining_s = deadline_s - time.monotonic()
                if remaining_s <= 0:
                    break
                wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), remaining_s)
            batch = self._take(queue, pair)
            if batch:
                await self._run(name, batch)

    @staticmethod
    def _texts_waiting(queue: deque[_Request], pair: tuple[str, str]) -> int:
        return sum(len(r.texts) for r in queue if (r.source, r.target) == pair)

    def _take(self, queue: deque[_Request], pair: tuple[str, str]) -> list[_Request]:
        """Removes the pair's oldest live requests that fit in one batch (the first always
        does) and every request whose caller has gone."""
        batch: list[_Request] = []
        kept: list[_Request] = []
        size = 0
        full = False
        for request in queue:
            if request.future.done():
                self.stats.skipped_cancelled += 1
            elif (request.source, request.target) != pair or full:
                kept.append(request)
            elif batch and size + len(request.texts) > self.max_batch_size:
                full = True
                kept.append(request)
            else:
                batch.append(request)
                size += len(request.texts)
        queue.clear()
        queue.extend(kept)
        return batch

    async def _run(self, name: str, batch: list[_Request]) -> None:
        backend = self._backends[name]
        texts = [text for request in batch for text in request.texts]
        source, target = batch[0].source, batch[0].target
        started_s = time.monotonic()
        try:
            translations = await asyncio.get_running_loop().run_in_executor(
                self._executors[name], self._translate, backend, texts, source, target
            )
        except asyncio.CancelledError:
            _fail(batch, _closed_error())
            raise
        except Exception as error:
            logger.exception("backend %s failed on a batch of %d texts", name, len(texts))
            _fail(batch, error)
            return
        inference_s = time.monotonic() - started_s
        self.stats.batches += 1
        logger.debug(
            "batch backend=%s pair=%s-%s requests=%d texts=%d inference_s=%.3f",
            name,
            source,
            target,
            len(batch),
            len(texts),
            inference_s,
        )
        offset = 0
        for request in batch:
            end = offset + len(request.texts)
            self.stats.completed += 1
            if not request.future.done():
                request.future.set_result(
                    Translated(
                        translations[offset:end],
                        name,
                        started_s - request.submitted_s,
                        inference_s,
                        len(texts),
                    )
                )
            offset = end

    def _translate(
        self, backend: TranslationBackend, texts: list[str], source: str, target: str
    ) -> list[str]:
        """Runs in the backend's thread; a request larger than a batch runs in slices."""
        translations = [
            translation
            for start in range(0, len(texts), self.max_batch_size)
            for translation in backend.translate(
                texts[start : start + self.max_batch_size], source, target
            )
        ]
        if len(translations) != len(texts):
            raise BackendError(
                f"backend {backend.name} returned {len(translations)} translations for "
                f"{len(texts)} texts"
            )
        return translations

    async def close(self) -> None:
        """Fails queued requests, stops the workers and waits for running batches to end."""
        self._closed = True
        for queue in self._queues.values():
            _fail(list(queue), _closed_error())
            queue.clear()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for executor in self._executors.values():
            await asyncio.to_thread(executor.shutdown)


def _fail(requests: list[_Request], error: Exception) -> None:
    for request in requests:
        if not request.future.done():
            request.future.set_exception(error)
