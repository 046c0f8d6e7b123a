import asyncio

import numpy as np
import pytest

from dragoman.stt.engine import TranscribeOptions, WhisperEngine
from dragoman.stt.scheduler import Priority, QueueClosedError, QueueFullError, Scheduler

GREEDY = TranscribeOptions(beam_size=1, temperatures=(0.0,), retry_full_window=False)


@pytest.fixture(scope="module")
def short_audio(jfk_audio: np.ndarray) -> np.ndarray:
    """Two seconds keep each job short."""
    return jfk_audio[: 2 * 16000]


def test_final_queued_behind_interims_runs_first(
    tiny_engine: WhisperEngine, short_audio: np.ndarray
) -> None:
    async def scenario() -> list[str]:
        scheduler = Scheduler(max_queue=8, max_batch_size=1)
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
        assert all("And so" in r.result.text for r in results)
        assert all(r.run_s > 0 for r in results)
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
        with pytest.raises(QueueFullError, match="queue is full"):
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

        with pytest.raises(QueueClosedError, match="shutting down"):
            await queued
        with pytest.raises(QueueClosedError):
            scheduler.submit(tiny_engine.name, short_audio, GREEDY, Priority.FINAL)

    asyncio.run(scenario())


def test_requests_waiting_together_share_one_model_call(
    tiny_engine: WhisperEngine, jfk_audio: np.ndarray
) -> None:
    """Three interims of three streams, waiting at the same moment, are one batch; each
    gets its own transcript, as it would alone."""
    pieces = [jfk_audio[: 3 * 16000], jfk_audio[3 * 16000 : 7 * 16000], jfk_audio[: 5 * 16000]]
    alone = [tiny_engine.transcribe(piece, GREEDY).text for piece in pieces]

    async def scenario() -> list:
        scheduler = Scheduler(max_queue=8, max_batch_size=8, batch_wait_s=0.5)
        scheduler.add_engine(tiny_engine)
        jobs = [
            scheduler.submit(tiny_engine.name, piece, GREEDY, Priority.INTERIM) for piece in pieces
        ]
        done = await asyncio.gather(*jobs)
        await scheduler.close()
        assert scheduler.stats.batches == 1
        return done

    done = asyncio.run(scenario())
    assert [d.batch_size for d in done] == [3, 3, 3]
    assert [d.result.text for d in done] == alone


def test_requests_that_cannot_share_a_call_run_apart(
    tiny_engine: WhisperEngine, short_audio: np.ndarray
) -> None:
    """A final (beam 5) and an interim (greedy) differ in what generate cannot vary."""

    async def scenario() -> list:
        scheduler = Scheduler(max_queue=8, max_batch_size=8, batch_wait_s=0.2)
        scheduler.add_engine(tiny_engine)
        final = TranscribeOptions(beam_size=5)
        jobs = [
            scheduler.submit(tiny_engine.name, short_audio, final, Priority.FINAL),
            scheduler.submit(tiny_engine.name, short_audio, GREEDY, Priority.INTERIM),
        ]
        done = await asyncio.gather(*jobs)
        await scheduler.close()
        return done

    assert [d.batch_size for d in asyncio.run(scenario())] == [1, 1]


def test_a_job_whose_caller_left_during_its_run_is_counted_as_discarded(
    tiny_engine: WhisperEngine, jfk_audio: np.ndarray
) -> None:
    discarded: list[float] = []

    async def scenario() -> None:
        scheduler = Scheduler(
            max_queue=8, on_discarded=lambda model, seconds: discarded.append(seconds)
        )
        scheduler.add_engine(tiny_engine)
        final = TranscribeOptions(beam_size=5)
        left = scheduler.submit(tiny_engine.name, jfk_audio, final, Priority.FINAL)
        for _ in range(5000):
            if not scheduler.queued:
                break
            await asyncio.sleep(0.001)
        left.cancel()
        await scheduler.submit(tiny_engine.name, jfk_audio, GREEDY, Priority.INTERIM)
        await scheduler.close()
        assert scheduler.stats.skipped_cancelled == 0, "the job had started"

    asyncio.run(scenario())
    assert len(discarded) == 1
    assert discarded[0] > 0
