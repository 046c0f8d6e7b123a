"""Caption rooms: the results of speaking streams, fanned out to any number of listeners.

A room exists while a stream speaks into it or a listener follows it, so names cost
nothing once everybody has left. Each listener has a bounded queue: a listener that falls
behind loses interim results first (a newer revision follows anyway) and is cut off with
RESOURCE_EXHAUSTED only when a final result would be lost, so a slow browser tab never
holds back the speaker or the other listeners.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from dragoman.speech.v1 import speech_pb2
from server.errors import OverloadedError

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Listener:
    interim_results: bool
    queue: asyncio.Queue[speech_pb2.StreamCaptionsResponse]
    overflowed: bool = False


@dataclass(eq=False)
class _Room:
    backlog: deque[speech_pb2.StreamCaptionsResponse]
    listeners: set[_Listener] = field(default_factory=set)
    speakers: int = 0


class CaptionRooms:
    """Every room of one gateway."""

    def __init__(self, *, backlog: int, listener_queue: int) -> None:
        self._backlog = backlog
        self._listener_queue = listener_queue
        self._rooms: dict[str, _Room] = {}

    def __len__(self) -> int:
        return len(self._rooms)

    def listeners(self, name: str) -> int:
        """How many listeners follow the room now."""
        room = self._rooms.get(name)
        return len(room.listeners) if room is not None else 0

    def _room(self, name: str) -> _Room:
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = _Room(backlog=deque(maxlen=self._backlog))
        return room

    def _leave(self, name: str, room: _Room) -> None:
        if not room.speakers and not room.listeners:
            del self._rooms[name]

    @contextlib.contextmanager
    def speaking(self, name: str) -> Iterator[None]:
        """Keeps the room (and its backlog) alive while a stream speaks into it."""
        room = self._room(name)
        room.speakers += 1
        try:
            yield
        finally:
            room.speakers -= 1
            self._leave(name, room)

    def publish(
        self, name: str, session_id: str, result: speech_pb2.StreamingRecognitionResult
    ) -> None:
        """Hands a result to every listener of the room without waiting for any of them."""
        room = self._rooms.get(name)
        if room is None:
            return
        caption = speech_pb2.StreamCaptionsResponse(session_id=session_id, result=result)
        if result.is_final:
            room.backlog.append(caption)
        for listener in room.listeners:
            if not (result.is_final or listener.interim_results):
                continue
            try:
                listener.queue.put_nowait(caption)
            except asyncio.QueueFull:
                if result.is_final:
                    listener.overflowed = True

    async def listen(
        self, name: str, *, interim_results: bool
    ) -> AsyncIterator[speech_pb2.StreamCaptionsResponse]:
        """The room's recent finals (marked `replayed`), then its results as they come."""
        room = self._room(name)
        listener = _Listener(interim_results, asyncio.Queue(self._listener_queue))
        replay = list(room.backlog)
        room.listeners.add(listener)
        try:
            for caption in replay:
                replayed = speech_pb2.StreamCaptionsResponse()
                replayed.CopyFrom(caption)
                replayed.replayed = True
                yield replayed
            while True:
                if listener.overflowed and listener.queue.empty():
                    raise OverloadedError(
                        f"this listener fell more than {self._listener_queue} results behind "
                        f"room {name!r} and missed a final result; reconnect to catch up"
                    )
                yield await listener.queue.get()
        finally:
            room.listeners.discard(listener)
            self._leave(name, room)
