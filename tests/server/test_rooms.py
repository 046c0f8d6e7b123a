"""Caption rooms: fan-out, backlog, slow listeners and cleanup."""

import asyncio

import pytest

from dragoman.speech.v1 import speech_pb2
from server.errors import OverloadedError
from server.rooms import CaptionRooms


def _result(segment_id: int, *, final: bool) -> speech_pb2.StreamingRecognitionResult:
    return speech_pb2.StreamingRecognitionResult(
        segment_id=segment_id, is_final=final, transcript=f"segment {segment_id}"
    )


async def _take(listener, count: int) -> list[speech_pb2.StreamCaptionsResponse]:
    return [await anext(listener) for _ in range(count)]


def test_listeners_get_live_results_and_late_joiners_the_recent_finals() -> None:
    async def scenario() -> None:
        rooms = CaptionRooms(backlog=2, listener_queue=16)
        with rooms.speaking("room"):
            everything = rooms.listen("room", interim_results=True)
            finals_only = rooms.listen("room", interim_results=False)
            first = asyncio.ensure_future(_take(everything, 4))
            second = asyncio.ensure_future(_take(finals_only, 3))
            await asyncio.sleep(0)
            for segment_id in (1, 2, 3):
                if segment_id == 2:
                    rooms.publish("room", "s", _result(2, final=False))
                rooms.publish("room", "s", _result(segment_id, final=True))
            heard = await first
            assert [(c.result.segment_id, c.result.is_final) for c in heard] == [
                (1, True),
                (2, False),
                (2, True),
                (3, True),
            ]
            assert [c.result.segment_id for c in await second] == [1, 2, 3]
            late = rooms.listen("room", interim_results=True)
            replayed = await _take(late, 2)
            assert [c.result.segment_id for c in replayed] == [2, 3]
            assert all(c.replayed for c in replayed)
            assert all(c.session_id == "s" for c in replayed)
            for listener in (everything, finals_only, late):
                await listener.aclose()
        assert len(rooms) == 0

    asyncio.run(scenario())


def test_a_slow_listener_loses_interims_first_then_is_cut_off() -> None:
    async def scenario() -> None:
        rooms = CaptionRooms(backlog=0, listener_queue=2)
        with rooms.speaking("room"):
            listener = rooms.listen("room", interim_results=True)
            waiting = asyncio.ensure_future(anext(listener))
            await asyncio.sleep(0)
            rooms.publish("room", "s", _result(1, final=True))
            await waiting
            rooms.publish("room", "s", _result(2, final=True))
            rooms.publish("room", "s", _result(3, final=False))
            rooms.publish("room", "s", _result(3, final=False))
            assert [c.result.segment_id for c in await _take(listener, 2)] == [2, 3]
            for segment_id in (4, 5, 6):
                rooms.publish("room", "s", _result(segment_id, final=True))
            assert [c.result.segment_id for c in await _take(listener, 2)] == [4, 5]
            with pytest.raises(OverloadedError, match="fell more than 2 results behind"):
                await anext(listener)
            assert rooms.listeners("room") == 0

    asyncio.run(scenario())


def test_results_of_a_room_nobody_follows_are_dropped() -> None:
    rooms = CaptionRooms(backlog=5, listener_queue=4)
    rooms.publish("empty", "s", _result(1, final=True))
    assert len(rooms) == 0
