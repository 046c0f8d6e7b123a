"""The queue shared by the STT and translation services, with a plain function as the model.

tests/stt/test_scheduler.py covers it under the real model (finals before interims,
eviction of interims, one call for requests waiting together); these tests pin what a
model would make slow or vague: which jobs a batch takes, job sizes, the batch wait, and
what the callers and the metrics see when jobs go away.
"""

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from dragoman.batching import BatchQueue, Done, QueueClosedError, QueueFullError

HELD = "held"
"""A payload whose call waits for the test, so that others queue up behind it."""
HOLD_TIMEOUT_S = 5.0


class Model:
    """Records each call's payloads and returns them in capitals."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.running = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def __call__(self, payloads: list[str]) -> list[str]:
        self.calls.append(list(payloads))
        if HELD in payloads:
            self.running.set()
            assert self.release.wait(HOLD_TIMEOUT_S), "the test never released the call"
        if "boom" in payloads:
            raise ValueError("the model failed")
        self.finished.set()
        return [payload.upper() for payload in payloads]

    async def until_running(self) -> None:
        assert await asyncio.to_thread(self.running.wait, HOLD_TIMEOUT_S)


def scenario(
    test: Callable[[BatchQueue[str, str], Model], Awaitable[None]], **settings: object
) -> Model:
    """Runs `test` against a queue with one worker, "m", and closes it whatever happens."""
    model = Model()

    async def run() -> None:
        queue: BatchQueue[str, str] = BatchQueue(
            **{"max_queue": 8, "max_batch_size": 8, "batch_wait_s": 0.0} | settings
        )
        queue.add_worker("m", model)
        try:
            await test(queue, model)
        finally:
            model.release.set()
            await queue.close()

    asyncio.run(run())
    return model


async def hold(queue: BatchQueue[str, str], model: Model) -> asyncio.Future[Done[str]]:
    """Occupies the worker, so that the jobs submitted next wait together."""
    held = queue.submit("m", HELD, key="held")
    await model.until_running()
    return held


def test_a_batch_takes_the_most_urgent_then_oldest_jobs_of_one_key_up_to_its_size() -> None:
    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        await hold(queue, model)
        jobs = [
            queue.submit("m", name, key=key, priority=priority)
            for name, key, priority in [
                ("a", "en-fr", 1),
                ("b", "en-fr", 1),
                ("c", "en-fr", 0),
                ("d", "en-de", 0),
                ("e", "en-fr", 0),
                ("f", "en-fr", 0),
            ]
        ]
        model.release.set()
        done = await asyncio.gather(*jobs)
        assert [d.result for d in done] == ["A", "B", "C", "D", "E", "F"]
        assert [d.batch_size for d in done] == [2, 1, 2, 1, 2, 2]

    model = scenario(test, max_batch_size=2)

    assert model.calls == [[HELD], ["c", "e"], ["d"], ["f", "a"], ["b"]]


def test_job_sizes_count_towards_the_batch_size() -> None:
    """A translation request counts its texts: two of two texts fill a batch of four."""

    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        await hold(queue, model)
        jobs = [queue.submit("m", name, size=size) for name, size in [("a", 2), ("b", 2), ("c", 1)]]
        model.release.set()
        done = await asyncio.gather(*jobs)
        assert [d.batch_size for d in done] == [4, 4, 1]

    assert scenario(test, max_batch_size=4).calls == [[HELD], ["a", "b"], ["c"]]


def test_a_lone_job_waits_for_company_no_longer_than_the_batch_wait() -> None:
    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        first = queue.submit("m", "a")
        await asyncio.sleep(0.05)
        second = queue.submit("m", "b")
        done = await asyncio.wait_for(asyncio.gather(first, second), HOLD_TIMEOUT_S)
        assert 0.19 <= done[0].queue_s < 1.0

    assert scenario(test, batch_wait_s=0.2).calls == [["a", "b"]]


def test_a_full_batch_does_not_wait() -> None:
    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        started_s = time.monotonic()
        await asyncio.wait_for(
            asyncio.gather(queue.submit("m", "a"), queue.submit("m", "b")), HOLD_TIMEOUT_S
        )
        assert time.monotonic() - started_s < 1.0

    assert scenario(test, max_batch_size=2, batch_wait_s=30.0).calls == [["a", "b"]]


def test_a_full_queue_refuses_with_what_to_do_and_a_withdrawn_job_frees_its_slot() -> None:
    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        await hold(queue, model)
        withdrawn = queue.submit("m", "a")
        queue.submit("m", "b")
        with pytest.raises(QueueFullError, match=r"\(2 requests waiting\); retry with backoff"):
            queue.submit("m", "c", priority=-1)
        withdrawn.cancel()
        assert queue.queued == 1
        later = queue.submit("m", "d")
        model.release.set()
        assert (await later).result == "D"
        assert (queue.stats.rejected, queue.stats.skipped_cancelled) == (1, 1)

    model = scenario(test, max_queue=2, noun="requests")

    assert model.calls == [[HELD], ["b", "d"]]


def test_eviction_drops_the_oldest_of_the_least_urgent_jobs_and_never_an_equal() -> None:
    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        await hold(queue, model)
        kept = [queue.submit("m", "a", priority=1)]
        evicted = [queue.submit("m", "b", priority=2), queue.submit("m", "c", priority=2)]
        kept.append(queue.submit("m", "d", priority=1))
        with pytest.raises(QueueFullError, match="queue is full"):
            queue.submit("m", "e", priority=2)
        kept.append(queue.submit("m", "f", priority=0))
        for job in evicted:
            with pytest.raises(QueueFullError, match=r"^pushed out$"):
                await job
        model.release.set()
        assert [done.result for done in await asyncio.gather(*kept)] == ["A", "D", "F"]
        assert (queue.stats.evicted, queue.stats.rejected) == (2, 1)

    model = scenario(test, max_queue=3, evict=True, evicted_message="pushed out")

    assert model.calls == [[HELD], ["f", "a", "d"]]


def test_model_time_of_a_job_whose_caller_left_is_reported_as_its_share() -> None:
    discarded: list[tuple[str, float]] = []

    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        stays = queue.submit("m", HELD, size=1)
        leaves = queue.submit("m", "gone", size=3)
        await model.until_running()
        leaves.cancel()
        model.release.set()
        done = await stays
        assert done.batch_size == 4
        assert discarded == [("m", pytest.approx(done.run_s * 3 / 4))]
        assert (queue.stats.completed, queue.stats.skipped_cancelled) == (2, 0)

    scenario(test, max_batch_size=4, on_discarded=lambda worker, s: discarded.append((worker, s)))


def test_a_failed_call_fails_its_jobs_and_the_worker_goes_on() -> None:
    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        failed = [queue.submit("m", "boom"), queue.submit("m", "x")]
        for job in failed:
            with pytest.raises(ValueError, match="the model failed"):
                await job
        assert (await queue.submit("m", "y")).result == "Y"
        assert queue.stats.batches == 1

    assert scenario(test).calls == [["boom", "x"], ["y"]]


def test_close_fails_running_and_queued_jobs_but_waits_for_the_running_call() -> None:
    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        running = await hold(queue, model)
        queued = queue.submit("m", "a")
        closing = asyncio.create_task(queue.close())
        for job in (running, queued):
            with pytest.raises(QueueClosedError, match="retry on another replica"):
                await job
        await asyncio.sleep(0.05)
        assert not closing.done(), "close returned while the model was still running"
        model.release.set()
        await asyncio.wait_for(closing, HOLD_TIMEOUT_S)
        assert model.finished.is_set()

    assert scenario(test).calls == [[HELD]]


def test_jobs_for_an_unknown_worker_are_refused() -> None:
    async def test(queue: BatchQueue[str, str], model: Model) -> None:
        with pytest.raises(KeyError):
            queue.submit("other", "a")
        assert queue.queued == 0

    scenario(test)


def test_jobs_with_array_payloads_of_any_shape_are_batched() -> None:
    """Audio payloads are arrays: a job is taken out of the queue by identity, so one that
    is not first in line is found without comparing arrays (which raised, killing the
    worker, once two streams' requests of different lengths waited together)."""

    async def run() -> list[int]:
        queue: BatchQueue[np.ndarray, int] = BatchQueue(
            max_queue=8, max_batch_size=8, batch_wait_s=0.05
        )
        queue.add_worker("m", lambda arrays: [len(array) for array in arrays])
        try:
            waiting = [
                queue.submit("m", np.zeros(3), key="interims", priority=1),
                queue.submit("m", np.zeros(5), key="finals", priority=0),
                queue.submit("m", np.zeros(7), key="finals", priority=0),
            ]
            done = await asyncio.wait_for(asyncio.gather(*waiting), HOLD_TIMEOUT_S)
            return [each.result for each in done]
        finally:
            await queue.close()

    assert asyncio.run(run()) == [3, 5, 7]
