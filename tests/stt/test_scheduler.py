import asyncio

import numpy as np
import pytest

from stt.engine import TranscribeOptions, WhisperEngine
from stt.scheduler import Priority, QueueFullError, Scheduler, SchedulerClosedError

GREEDY = TranscribeOptions(beam_size=1, temperatures=(0.0,))


@pytest.fixture(scope="module")
def short_audio(jfk_audio: np.ndarray) -> np.ndarray:
    """Two seconds keep each job short; Whisper's cost barely depends on the length."""
    return jfk_audio[: 2 * 16000]


def test_final_queued_behind_interims_runs_first(
    tiny_engine: WhisperEngine, short_audio: np.ndarray
) -> None:
    async def scenario() -> list[str]:
        scheduler = Scheduler(max_queue=8)
        scheduler.add_engine(tiny_engine)
        order: list[str] = []
        jobs = {
            label: scheduler.submit(tiny_engine.name, short_audio, GREEDY, priority)
            for label, priority in [
                ("interim-1", Priority.INTERIM),
                ("interim-2", Priority.INTERIM),
                ("final", Priority.FINAL),
            ]
        }
        for label, job in jobs.items():
            job.add_done_callback(lambda _, label=label: order.append(label))
        results = await asyncio.gather(*jobs.values())
        await scheduler.close()
        assert all("And so" in r.transcription.text for r in results)
        assert all(r.inference_s > 0 for r in results)
        return order

    assert asyncio.run(scenario()) == ["final", "interim-1", "interim-2"]


def test_jobs_whose_caller_has_gone_are_skipped(
    tiny_engine: WhisperEngine, short_audio: np.ndarray
) -> None:
    async def scenario() -> Scheduler:
        scheduler = Scheduler(max_queue=8)
        scheduler.add_engine(tiny_engine)
        jobs = [
            scheduler.submit(tiny_engine.name, short_audio, GREEDY, Priority.INTERIM)
            for _ in range(3)
        ]
        jobs[1].cancel()
        await asyncio.gather(jobs[0], jobs[2])
        await scheduler.close()
        return scheduler

    stats = asyncio.run(scenario()).stats
    assert (stats.completed, stats.skipped_cancelled) == (2, 1)


def test_full_queue_evicts_interims_for_finals_then_rejects(
    tiny_engine: WhisperEngine, short_audio: np.ndarray
) -> None:
    async def scenario() -> None:
        scheduler = Scheduler(max_queue=2)
        scheduler.add_engine(tiny_engine)

        def submit(priority: Priority) -> asyncio.Future:
            return scheduler.submit(tiny_engine.name, short_audio, GREEDY, priority)

        interims = [submit(Priority.INTERIM), submit(Priority.INTERIM)]
        with pytest.raises(QueueFullError, match="queue is full"):
            submit(Priority.INTERIM)
        finals = [submit(Priority.FINAL), submit(Priority.FINAL)]
        with pytest.raises(QueueFullError, match="all finals"):
            submit(Priority.FINAL)

        for interim in interims:
            with pytest.raises(QueueFullError, match="make room for a final"):
                await interim
        await asyncio.gather(*finals)
        await scheduler.close()
        assert (scheduler.stats.evicted, scheduler.stats.rejected) == (2, 2)

    asyncio.run(scenario())


def test_close_fails_queued_jobs_and_refuses_new_ones(
    tiny_engine: WhisperEngine, short_audio: np.ndarray
) -> None:
    async def scenario() -> None:
        scheduler = Scheduler(max_queue=8)
        scheduler.add_engine(tiny_engine)
        queued = scheduler.submit(tiny_engine.name, short_audio, GREEDY, Priority.FINAL)

        await scheduler.close()

        with pytest.raises(SchedulerClosedError, match="shutting down"):
            await queued
        with pytest.raises(SchedulerClosedError):
            scheduler.submit(tiny_engine.name, short_audio, GREEDY, Priority.FINAL)

    asyncio.run(scenario())
