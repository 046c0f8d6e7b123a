"""Micro-batching of concurrent translation requests, one worker per backend.

A seq2seq model translates sixteen sentences in little more time than one, and the gateway
sends one short request per final transcript of every stream, so requests for the same
backend and language pair that arrive within a few milliseconds share one model call
(`dragoman.batching`, the queue the STT service uses too). A batch counts texts, not
requests, towards `max_batch_size`.
"""

from collections.abc import Mapping

from dragoman.batching import BatchQueue, Done, QueueClosedError, QueueFullError, QueueStats
from dragoman.translate.backends.base import BackendError, TranslationBackend

__all__ = ["Batcher", "QueueClosedError", "QueueFullError"]

Request = tuple[list[str], str, str]
"""Texts, source language, target language."""


class Batcher:
    """FIFO queues per backend, bounded together, each drained in batches of one pair."""

    def __init__(self, *, max_batch_size: int, batch_window_ms: float, max_queue: int) -> None:
        self.max_batch_size = max_batch_size
        self._backends: dict[str, TranslationBackend] = {}
        self._queue: BatchQueue[Request, list[str]] = BatchQueue(
            max_queue=max_queue,
            max_batch_size=max_batch_size,
            batch_wait_s=batch_window_ms / 1000,
            noun="requests",
        )

    @property
    def backends(self) -> Mapping[str, TranslationBackend]:
        """Backends ready to serve, by name, in the order they were added."""
        return self._backends

    @property
    def queued(self) -> int:
        return self._queue.queued

    @property
    def stats(self) -> QueueStats:
        return self._queue.stats

    def add_backend(self, backend: TranslationBackend) -> None:
        """Starts serving a loaded backend; call from the event loop."""
        self._backends[backend.name] = backend
        self._queue.add_worker(backend.name, lambda requests: self._translate(backend, requests))

    async def submit(
        self, backend: str, texts: list[str], source: str, target: str
    ) -> Done[list[str]]:
        """Translates `texts` from `source` into `target` with `backend`, sharing the model
        call with concurrent requests of the pair.

        Raises QueueFullError at once when there is no room, and KeyError for a backend
        that was never added.
        """
        return await self._queue.submit(
            backend, (texts, source, target), key=(source, target), size=len(texts)
        )

    def _translate(self, backend: TranslationBackend, requests: list[Request]) -> list[list[str]]:
        """Runs in the backend's thread; a request larger than a batch runs in slices."""
        _, source, target = requests[0]
        texts = [text for request_texts, _, _ in requests for text in request_texts]
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
        split, offset = [], 0
        for request_texts, _, _ in requests:
            split.append(translations[offset : offset + len(request_texts)])
            offset += len(request_texts)
        return split

    async def close(self) -> None:
        """Fails queued requests, stops the workers and waits for running batches to end."""
        await self._queue.close()
