"""Resumable sessions in Redis, so that a resume lands on any gateway.

Each session is two keys under one hash tag (`dragoman:session:{<token digest>}`):
- a hash: who may resume it, its config, the languages in force, its last sequence, the
  checkpoint a pipeline is rebuilt from (stream sample and segment id), the gateway that
  owns it with an epoch, and whether a connection is attached;
- `…:outbox`: the responses the client may not have received, trimmed to a bound.
Every write checks the epoch first: once another gateway has claimed the session (a
resume that landed there), the old owner can no longer write and learns that it lost it.
Each gateway keeps a liveness key (`dragoman:gateway:<id>`), so that a resuming gateway
knows whether the owner of an attached session still lives. Keys expire
`grace_s + GATEWAY_TTL_S` after their session's last write.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from redis.exceptions import RedisError

from dragoman.api.speech.v1 import speech_pb2
from dragoman.errors import StatusError
from dragoman.gateway.redis_client import pooled_client
from dragoman.gateway.segmenter import StreamPosition

logger = logging.getLogger(__name__)

T = TypeVar("T")
GATEWAY_TTL_S = 2.0
"""A gateway not heard from for this long is taken for dead: a resume after it was killed
waits this long at most."""
HEARTBEAT_S = 0.5
CONNECTIONS = 64

_SAVE = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return -1 end
if epoch ~= ARGV[1] then return 0 end
if ARGV[11] == '1' then redis.call('DEL', KEYS[2]) end
for i = 12, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('HSET', KEYS[1], 'sequence', ARGV[4], 'sample', ARGV[5], 'segment_id', ARGV[6],
    'attached', ARGV[7], 'owner', ARGV[8], 'spoken', ARGV[9], 'targets', ARGV[10])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""
_CLAIM = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'attached', '1')
return redis.call('HINCRBY', KEYS[1], 'epoch', 1)
"""
_DELETE = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1], KEYS[2])
"""


class SessionStoreUnavailableError(StatusError):
    """Redis did not answer; a session goes on in its gateway alone, and a resume that
    needs Redis is to be retried."""

    code = grpc.StatusCode.UNAVAILABLE


@dataclass(frozen=True)
class SessionState:
    """What changes as a session runs, written after each batch of responses."""

    responses: list[speech_pb2.StreamingRecognizeResponse]
    """The responses since the last write."""
    gap: bool
    """Some responses since the last write are no longer kept (Redis was away for long):
    the stored outbox starts afresh, so a resume from before them is refused."""
    sequence: int
    point: StreamPosition
    """The last checkpoint: where a rebuilt pipeline starts."""
    attached: bool
    owned: bool
    """False once the session is handed over: any gateway may claim it at once."""
    spoken: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class SessionRecord:
    """A session as a resuming gateway finds it."""

    session_id: str
    subject: str
    config: speech_pb2.StreamingRecognitionConfig
    spoken: str
    targets: tuple[str, ...]
    sequence: int
    point: StreamPosition
    owner: str
    epoch: int
    attached: bool
    outbox: list[speech_pb2.StreamingRecognizeResponse]


def _alive_key(gateway_id: str) -> str:
    return f"dragoman:gateway:{gateway_id}"


def _keys(key: str) -> list[str]:
    return [f"dragoman:session:{{{key}}}", f"dragoman:session:{{{key}}}:outbox"]


class RedisSessionStore:
    """The resumable sessions of every gateway that points at one Redis server."""

    def __init__(self, url: str, *, grace_s: float, max_responses: int, timeout_s: float) -> None:
        self.gateway_id = uuid.uuid4().hex
        self._ttl_ms = int((grace_s + GATEWAY_TTL_S) * 1000)
        self.refresh_s = (grace_s + GATEWAY_TTL_S) / 4
        """How often a session unchanged is written again, to keep its keys."""
        self._max_responses = max_responses
        self._redis = pooled_client(url, CONNECTIONS, timeout_s, timeout_s)
        self._save = self._redis.register_script(_SAVE)
        self._claim = self._redis.register_script(_CLAIM)
        self._delete = self._redis.register_script(_DELETE)
        self._heartbeat: asyncio.Task[None] | None = None

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (RedisError, OSError) as error:
            raise SessionStoreUnavailableError(
                f"the session store (Redis) did not answer ({what}: {error}); retry the resume"
            ) from None

    def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._beat(), name="session store heartbeat")

    async def _beat(self) -> None:
        alive = _alive_key(self.gateway_id)
        while True:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.set(alive, b"1", px=int(GATEWAY_TTL_S * 1000))
            await asyncio.sleep(HEARTBEAT_S)

    async def alive(self, gateway_id: str) -> bool:
        return bool(await self._call("alive", lambda: self._redis.exists(_alive_key(gateway_id))))

    async def create(
        self,
        key: str,
        session_id: str,
        subject: str,
        config: speech_pb2.StreamingRecognitionConfig,
        languages: tuple[str, tuple[str, ...]],
        epoch: int = 1,
    ) -> int:
        """Writes a new session owned by this gateway (or one Redis lost, as when it
        restarted empty, under its next `epoch`); returns its epoch."""
        record, outbox = _keys(key)

        async def create() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(outbox)
                pipe.hset(
                    record,
                    mapping={
                        "session_id": session_id,
                        "subject": subject,
                        "config": config.SerializeToString(),
                        "owner": self.gateway_id,
                        "epoch": epoch,
                        "attached": 1,
                        "sequence": 0,
                        "sample": 0,
                        "segment_id": 1,
                        "spoken": languages[0],
                        "targets": ",".join(languages[1]),
                    },
                )
                pipe.pexpire(record, self._ttl_ms)
                await pipe.execute()

        await self._call("create", create)
        return epoch

    async def save(self, key: str, epoch: int, state: SessionState) -> bool | None:
        """False when another gateway has claimed the session since `epoch`; None when
        the record is gone (Redis restarted empty, or it expired)."""
        arguments = [
            epoch,
            self._ttl_ms,
            self._max_responses,
            state.sequence,
            state.point.sample,
            state.point.segment_id,
            int(state.attached),
            self.gateway_id if state.owned else "",
            state.spoken,
            ",".join(state.targets),
            int(state.gap),
            *(response.SerializeToString() for response in state.responses),
        ]
        written = int(await self._call("save", lambda: self._save(keys=_keys(key), args=arguments)))
        return None if written < 0 else bool(written)

    async def load(self, key: str) -> SessionRecord | None:
        record, outbox = _keys(key)

        async def load() -> tuple[dict[bytes, bytes], list[bytes]]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(record)
                pipe.lrange(outbox, 0, -1)
                fields, responses = await pipe.execute()
            return fields, responses

        fields, responses = await self._call("load", load)
        if not fields:
            return None
        text = {name.decode(): value for name, value in fields.items()}
        targets = text["targets"].decode()
        return SessionRecord(
            session_id=text["session_id"].decode(),
            subject=text["subject"].decode(),
            config=speech_pb2.StreamingRecognitionConfig.FromString(text["config"]),
            spoken=text["spoken"].decode(),
            targets=tuple(targets.split(",")) if targets else (),
            sequence=int(text["sequence"]),
            point=StreamPosition(int(text["sample"]), int(text["segment_id"])),
            owner=text["owner"].decode(),
            epoch=int(text["epoch"]),
            attached=text["attached"] == b"1",
            outbox=[speech_pb2.StreamingRecognizeResponse.FromString(r) for r in responses],
        )

    async def count_resume(self, key: str, window_s: float) -> int:
        """Counts a resume of the session; the resumes counted in the window of `window_s`
        that the first of them opened."""
        counter = f"dragoman:session:{{{key}}}:resumes"

        async def count() -> int:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(counter, 0, ex=int(window_s), nx=True)
                pipe.incr(counter)
                _, resumes = await pipe.execute()
            return int(resumes)

        return await self._call("count resume", count)

    async def claim(self, key: str, epoch: int) -> int | None:
        """Makes this gateway the owner, attached; the new epoch, or None when the session
        changed since `epoch` was read."""
        claimed = await self._call(
            "claim", lambda: self._claim(keys=_keys(key)[:1], args=[epoch, self.gateway_id])
        )
        return int(claimed) or None

    async def delete(self, key: str, epoch: int) -> None:
        """Forgets a session that ended, unless another gateway has claimed it."""
        await self._call("delete", lambda: self._delete(keys=_keys(key), args=[epoch]))

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            with contextlib.suppress(RedisError, OSError):
                await self._redis.delete(_alive_key(self.gateway_id))
        await self._redis.aclose()
