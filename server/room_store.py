"""Where caption rooms keep their captions and who listens to them: the interface, and the
in-memory store of a single gateway (`dragoman serve`, no Redis URL).

A room is two logs: its finals, kept up to a bounded length so that late and returning
listeners can catch up, and its interims, kept only briefly because a newer revision
always follows. Positions are Redis Stream ids ("<milliseconds>-<sequence>") in both
stores, so a listener's position means the same thing whichever store serves it.

Which languages a room is listened in is kept per gateway with an expiry: each gateway
renews its own entries while its listeners are there, so a gateway that dies stops
costing translations once its entries expire.
"""

import asyncio
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from dragoman.api.speech.v1 import speech_pb2
from dragoman.errors import InvalidRequestError, StatusError

POSITION = re.compile(r"(\d{1,20})-(\d{1,20})")
START = "0-0"
INTERIMS_KEPT = 64
"""Interim captions a room keeps: enough for a reader that is a moment late."""

Translate = Callable[[], Awaitable[speech_pb2.Translation]]


class RoomStoreUnavailableError(StatusError):
    """The room store (Redis) did not answer."""

    code = grpc.StatusCode.UNAVAILABLE


class PositionExpiredError(StatusError):
    """A listener asked to resume after a position the room no longer keeps."""

    code = grpc.StatusCode.OUT_OF_RANGE


def parse_position(text: str) -> tuple[int, int]:
    match = POSITION.fullmatch(text)
    if match is None:
        raise InvalidRequestError(
            f"resume_after {text[:40]!r} is not a caption position: pass the `position` of a "
            "caption this room sent, like 1764755000123-0"
        )
    position = int(match[1]), int(match[2])
    if max(position) >= 2**64:
        raise InvalidRequestError(f"resume_after {text[:40]!r} is out of range")
    return position


@dataclass(frozen=True)
class StoredCaption:
    """A caption as the store keeps it: a serialized StreamCaptionsResponse."""

    position: str
    final: bool
    data: bytes


@dataclass(frozen=True)
class Cursor:
    """Where a reader of a room's two logs is."""

    finals: str = START
    interims: str = START


@dataclass(frozen=True)
class Listened:
    """The languages a room is listened in now: all of them, and those with interims."""

    finals: frozenset[str] = frozenset()
    interims: frozenset[str] = frozenset()


def listener_key(language: str, interim_results: bool, gateway: str) -> str:
    return f"{language}|{'interim' if interim_results else 'final'}|{gateway}"


def listened(keys: list[str]) -> Listened:
    """The languages named by a room's listener keys."""
    finals, interims = set(), set()
    for key in keys:
        language, kind, _ = key.split("|", 2)
        finals.add(language)
        if kind == "interim":
            interims.add(language)
    return Listened(frozenset(finals), frozenset(interims))


class RoomStore(Protocol):
    """What the rooms of a gateway need from shared state."""

    async def append(self, room: str, data: bytes, *, final: bool) -> str:
        """Adds a caption to the room's finals or interims; returns its position."""
        ...

    async def recent(self, room: str, count: int) -> list[StoredCaption]:
        """The room's last `count` finals, oldest first."""
        ...

    async def after(self, room: str, position: str) -> list[StoredCaption]:
        """Every final after `position`; PositionExpiredError if some were dropped."""
        ...

    async def end(self, room: str) -> Cursor:
        """The room's newest positions: a reader starting here gets what comes next."""
        ...

    async def read(self, room: str, cursor: Cursor) -> tuple[list[StoredCaption], Cursor]:
        """What was added after `cursor` (both logs, finals first), waiting a short while
        when nothing is there yet."""
        ...

    async def mark_listened(self, room: str, keys: list[str], ttl_s: float) -> None:
        """Renews the listener keys of this gateway in the room for `ttl_s`."""
        ...

    async def unmark_listened(self, room: str, key: str) -> None: ...

    async def listened(self, room: str) -> Listened: ...

    async def shared_translation(
        self, room: str, position: str, language: str, translate: Translate
    ) -> speech_pb2.Translation:
        """The final at `position` in `language`, translated once for every gateway."""
        ...

    async def close(self) -> None: ...


def _newer(captions: deque[StoredCaption], position: str) -> list[StoredCaption]:
    after = parse_position(position)
    return [c for c in captions if parse_position(c.position) > after]


@dataclass(eq=False)
class _MemoryRoom:
    finals: deque[StoredCaption]
    interims: deque[StoredCaption] = field(default_factory=lambda: deque(maxlen=INTERIMS_KEPT))
    dropped: str = START
    """The newest final that the bounded log has dropped."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: dict[str, float] = field(default_factory=dict)
    translations: dict[tuple[str, str], asyncio.Future[speech_pb2.Translation]] = field(
        default_factory=dict
    )
    touched: float = field(default_factory=time.monotonic)


class MemoryRoomStore:
    """The rooms of one process. A room with no caption or listener for `ttl_s` is dropped."""

    def __init__(self, *, history: int, ttl_s: float, read_wait_s: float = 1.0) -> None:
        self._history = history
        self._ttl_s = ttl_s
        self._read_wait_s = read_wait_s
        self._rooms: dict[str, _MemoryRoom] = {}
        self._last = (0, 0)

    def __len__(self) -> int:
        return len(self._rooms)

    def _room(self, name: str) -> _MemoryRoom:
        """The room, made when first named; quiet rooms are dropped then, not on every
        call."""
        now = time.monotonic()
        room = self._rooms.get(name)
        if room is None:
            for quiet in [n for n, r in self._rooms.items() if now - r.touched > self._ttl_s]:
                del self._rooms[quiet]
            room = self._rooms[name] = _MemoryRoom(finals=deque())
        room.touched = now
        return room

    def _next_position(self) -> str:
        """Redis's own rule: milliseconds, and a sequence within the same millisecond."""
        now_ms = int(time.time() * 1000)
        last_ms, sequence = self._last
        self._last = (now_ms, 0) if now_ms > last_ms else (last_ms, sequence + 1)
        return f"{self._last[0]}-{self._last[1]}"

    async def append(self, room: str, data: bytes, *, final: bool) -> str:
        state = self._room(room)
        caption = StoredCaption(self._next_position(), final, data)
        if final:
            state.finals.append(caption)
            while len(state.finals) > self._history:
                state.dropped = state.finals.popleft().position
                for key in [k for k in state.translations if k[0] == state.dropped]:
                    del state.translations[key]
        else:
            state.interims.append(caption)
        state.changed.set()
        state.changed = asyncio.Event()
        return caption.position

    async def recent(self, room: str, count: int) -> list[StoredCaption]:
        finals = self._room(room).finals
        return list(finals)[-count:] if count else []

    async def after(self, room: str, position: str) -> list[StoredCaption]:
        state = self._room(room)
        if parse_position(position) < parse_position(state.dropped):
            raise PositionExpiredError(expired_message(room, position, self._history))
        return _newer(state.finals, position)

    async def end(self, room: str) -> Cursor:
        state = self._room(room)
        return Cursor(
            state.finals[-1].position if state.finals else state.dropped,
            state.interims[-1].position if state.interims else START,
        )

    async def read(self, room: str, cursor: Cursor) -> tuple[list[StoredCaption], Cursor]:
        state = self._room(room)
        captions = _newer(state.finals, cursor.finals) + _newer(state.interims, cursor.interims)
        if not captions:
            changed = state.changed
            try:
                async with asyncio.timeout(self._read_wait_s):
                    await changed.wait()
            except TimeoutError:
                return [], cursor
            captions = _newer(state.finals, cursor.finals) + _newer(state.interims, cursor.interims)
        return captions, advanced(cursor, captions)

    async def mark_listened(self, room: str, keys: list[str], ttl_s: float) -> None:
        listeners = self._room(room).listeners
        for key in keys:
            listeners[key] = time.monotonic() + ttl_s

    async def unmark_listened(self, room: str, key: str) -> None:
        self._room(room).listeners.pop(key, None)

    async def listened(self, room: str) -> Listened:
        now = time.monotonic()
        return listened([k for k, until in self._room(room).listeners.items() if until > now])

    async def shared_translation(
        self, room: str, position: str, language: str, translate: Translate
    ) -> speech_pb2.Translation:
        translations = self._room(room).translations
        pending = translations.get((position, language))
        if pending is None:
            pending = translations[(position, language)] = asyncio.ensure_future(translate())
        return await asyncio.shield(pending)

    async def close(self) -> None:
        for room in self._rooms.values():
            for pending in room.translations.values():
                pending.cancel()
        self._rooms.clear()


def advanced(cursor: Cursor, captions: list[StoredCaption]) -> Cursor:
    finals = [c.position for c in captions if c.final]
    interims = [c.position for c in captions if not c.final]
    return Cursor(
        finals[-1] if finals else cursor.finals, interims[-1] if interims else cursor.interims
    )


def expired_message(room: str, position: str, history: int) -> str:
    return (
        f"room {room!r} no longer keeps the captions after {position} (it keeps the last "
        f"{history} finals); join again without resume_after to get its recent finals"
    )
