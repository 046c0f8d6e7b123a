"""Caption rooms in Redis, shared by every gateway that points at the same server.

Each room is a handful of keys under one hash tag (`dragoman:room:{<room>}:…`), so that
they stay together on a Redis Cluster:
- `finals` and `interims`: Redis Streams, trimmed to a bounded length (approximately, as
  Redis trims cheaply), so any gateway reads them and late joiners catch up;
- `listeners`: a sorted set of listener keys scored by when they expire;
- `translation:<position>|<language>`: a final translated after it was published (for a
  listener whose language arrived late), claimed by one gateway with `SET NX`.
Every key expires when the room has been quiet for `ttl_s`.

redis-py reconnects by itself, so when Redis comes back the rooms work again without a
restart; while it is away every call raises RoomStoreUnavailableError at once.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import RedisError, ResponseError

from dragoman.api.speech.v1 import speech_pb2
from dragoman.errors import StatusError
from dragoman.gateway.redis_client import pooled_client
from dragoman.gateway.room_store import (
    INTERIMS_KEPT,
    START,
    Cursor,
    Listened,
    PositionExpiredError,
    RoomStoreUnavailableError,
    StoredCaption,
    Translate,
    advanced,
    expired_message,
    listened,
    parse_position,
)

T = TypeVar("T")
DATA = b"caption"
CLAIM_POLL_S = 0.05
COMMAND_CONNECTIONS = 256
READ_CONNECTIONS = 4096
"""Each room a gateway follows holds a read connection in XREAD BLOCK."""


def _key(room: str, part: str) -> str:
    return f"dragoman:room:{{{room}}}:{part}"


class RedisRoomStore:
    """The rooms of every gateway, in one Redis (or Valkey) server."""

    def __init__(
        self,
        url: str,
        *,
        history: int,
        ttl_s: float,
        timeout_s: float,
        read_wait_s: float = 1.0,
        translate_timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self._history = history
        self._ttl_s = int(ttl_s)
        self._read_wait_ms = int(read_wait_s * 1000)
        self._translate_timeout_s = translate_timeout_s
        self._redis = pooled_client(url, COMMAND_CONNECTIONS, timeout_s, timeout_s)
        self._reads = pooled_client(url, READ_CONNECTIONS, timeout_s, timeout_s + read_wait_s)

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except ResponseError as error:
            raise StatusError(f"the caption room store refused {what}: {error}") from None
        except (RedisError, OSError) as error:
            raise RoomStoreUnavailableError(
                f"the caption room store (Redis) did not answer ({what}: {error}); captions "
                "resume once it is back: retry with your last position"
            ) from None

    async def append(self, room: str, data: bytes, *, final: bool) -> str:
        stream = _key(room, "finals" if final else "interims")

        async def append() -> str:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(
                    stream,
                    {DATA: data},
                    maxlen=self._history if final else INTERIMS_KEPT,
                    approximate=True,
                )
                pipe.expire(stream, self._ttl_s)
                position, _ = await pipe.execute()
            return position.decode()

        return await self._call("append", append)

    async def recent(self, room: str, count: int) -> list[StoredCaption]:
        if not count:
            return []
        entries = await self._call(
            "recent", lambda: self._redis.xrevrange(_key(room, "finals"), count=count)
        )
        return _captions(reversed(entries), final=True)

    async def after(self, room: str, position: str) -> list[StoredCaption]:
        """Trimming drops the oldest entries first, so while the entry at `position` is
        still there nothing after it was dropped; once it is gone (or the whole room is,
        as when Redis restarted empty) what followed it may be gone too."""
        parse_position(position)
        stream = _key(room, "finals")

        async def after() -> tuple[list[Any], bool, bool]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xrange(stream, min=f"({position}")
                pipe.xrange(stream, min=position, max=position)
                pipe.exists(stream)
                entries, at_position, exists = await pipe.execute()
            return entries, bool(at_position), bool(exists)

        entries, kept, exists = await self._call("after", after)
        if not kept and (entries or not exists):
            raise PositionExpiredError(expired_message(room, position, self._history))
        return _captions(entries, final=True)

    async def end(self, room: str) -> Cursor:
        async def end() -> Cursor:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xrevrange(_key(room, "finals"), count=1)
                pipe.xrevrange(_key(room, "interims"), count=1)
                finals, interims = await pipe.execute()
            return Cursor(_last(finals), _last(interims))

        return await self._call("end", end)

    async def read(self, room: str, cursor: Cursor) -> tuple[list[StoredCaption], Cursor]:
        finals, interims = _key(room, "finals"), _key(room, "interims")
        response = await self._call(
            "read",
            lambda: self._reads.xread(
                {finals: cursor.finals, interims: cursor.interims},
                count=self._history,
                block=self._read_wait_ms,
            ),
        )
        by_stream = {name.decode(): entries for name, entries in response or []}
        captions = _captions(by_stream.get(finals, []), final=True) + _captions(
            by_stream.get(interims, []), final=False
        )
        return captions, advanced(cursor, captions)

    async def mark_listened(self, room: str, keys: list[str], ttl_s: float) -> None:
        if not keys:
            return
        listeners = _key(room, "listeners")

        async def mark() -> None:
            now = await self._now()
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zadd(listeners, dict.fromkeys(keys, now + ttl_s))
                pipe.zremrangebyscore(listeners, "-inf", now)
                pipe.expire(listeners, max(self._ttl_s, int(ttl_s) + 1))
                await pipe.execute()

        await self._call("mark listened", mark)

    async def _now(self) -> float:
        """Redis's clock, which every gateway shares, for the listeners' expiry."""
        seconds, microseconds = await self._redis.time()
        return seconds + microseconds / 1e6

    async def unmark_listened(self, room: str, key: str) -> None:
        await self._call("unmark listened", lambda: self._redis.zrem(_key(room, "listeners"), key))

    async def listened(self, room: str) -> Listened:
        async def fetch() -> list[str]:
            """Redis's clock and the keys with their expiry, in one round trip."""
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.time()
                pipe.zrange(_key(room, "listeners"), 0, -1, withscores=True)
                (now_s, now_us), keys = await pipe.execute()
            return [key.decode() for key, until in keys if until > now_s + now_us / 1e6]

        return listened(await self._call("listened", fetch))

    async def shared_translation(
        self, room: str, position: str, language: str, translate: Translate
    ) -> speech_pb2.Translation:
        """The first gateway to claim (position, language) translates and stores it, for
        the room's history (each under a key of its own that expires with the room); the
        others wait for it to appear, or translate themselves if the claimant failed."""
        stored_key = _key(room, f"translation:{position}|{language}")
        claim = _key(room, f"claim:{position}|{language}")
        deadline = time.monotonic() + self._translate_timeout_s
        claimed = False
        while not claimed and time.monotonic() < deadline:
            stored = await self._call("translation", lambda: self._redis.get(stored_key))
            if stored is not None:
                return speech_pb2.Translation.FromString(stored)
            claimed = bool(
                await self._call(
                    "claim translation",
                    lambda: self._redis.set(
                        claim, b"1", nx=True, px=int(self._translate_timeout_s * 1000)
                    ),
                )
            )
            if not claimed:
                await asyncio.sleep(CLAIM_POLL_S)
        try:
            translation = await translate()
            await self._call(
                "store translation",
                lambda: self._redis.set(
                    stored_key, translation.SerializeToString(), ex=self._ttl_s
                ),
            )
        except BaseException:
            if claimed:  # let another gateway take it over at once
                with contextlib.suppress(RedisError, OSError):
                    await self._redis.delete(claim)
            raise
        return translation

    async def close(self) -> None:
        await self._redis.aclose()
        await self._reads.aclose()


def _last(entries: list[Any]) -> str:
    return entries[0][0].decode() if entries else START


def _captions(entries: Any, *, final: bool) -> list[StoredCaption]:
    return [StoredCaption(position.decode(), final, fields[DATA]) for position, fields in entries]
