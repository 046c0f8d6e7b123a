"""Publishes one speaking stream's results to its caption room, off the stream's own path.

The stream hands each result over and goes on: its client never waits for the room, and a
room store that is down costs the room its captions (a logged warning and a metric), not
the speaker its results. Results are published in order by one task per stream. A final
is translated, before it is published, into every language the room is listened in that
the speaker did not already translate it into, so each (final, language) is translated
once, by the one gateway that serves the speaker. Interims are translated the same way for
listeners who want them, but only the newest waits: one that a newer interim overtakes
while a translation is in flight is skipped, as the stream's own interims are.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from dragoman.api.speech.v1 import speech_pb2
from dragoman.errors import StatusError
from dragoman.gateway.metrics import GatewayMetrics
from dragoman.gateway.room_store import RoomStore

logger = logging.getLogger(__name__)

TranslateInto = Callable[[Sequence[str]], Awaitable[list[speech_pb2.Translation]]]
MAX_WAITING = 256
"""Results waiting to be published, at most; beyond that the oldest is dropped."""


@dataclass(frozen=True)
class _Waiting:
    result: speech_pb2.StreamingRecognitionResult
    translate: TranslateInto
    handed_at: float


class RoomPublisher:
    """The room side of one speaking stream."""

    def __init__(
        self,
        store: RoomStore,
        room: str,
        speaker: speech_pb2.Speaker,
        metrics: GatewayMetrics,
    ) -> None:
        self.room = room
        self._store = store
        self._speaker = speaker
        self._metrics = metrics
        self._waiting: deque[_Waiting] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = asyncio.create_task(self._run(), name=f"session {speaker.id} room {room}")

    def offer(
        self, result: speech_pb2.StreamingRecognitionResult, translate: TranslateInto
    ) -> None:
        """Queues a result; an interim replaces an interim still waiting."""
        if not result.is_final and self._waiting and not self._waiting[-1].result.is_final:
            self._waiting.pop()
        if len(self._waiting) >= MAX_WAITING:
            self._waiting.popleft()
            self._metrics.room_publish_failures.labels("queue_full").inc()
        self._waiting.append(_Waiting(result, translate, time.monotonic()))
        self._idle.clear()
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                waiting = self._waiting.popleft()
                try:
                    await self._publish(waiting)
                except StatusError as error:
                    self._metrics.room_publish_failures.labels("store").inc()
                    logger.warning(
                        "room %s: segment %d not published: %s",
                        self.room,
                        waiting.result.segment_id,
                        error,
                    )
                except Exception:
                    self._metrics.room_publish_failures.labels("error").inc()
                    logger.exception(
                        "room %s: segment %d not published", self.room, waiting.result.segment_id
                    )
            self._idle.set()

    async def _publish(self, waiting: _Waiting) -> None:
        result = speech_pb2.StreamingRecognitionResult()
        result.CopyFrom(waiting.result)
        listened = await self._store.listened(self.room)
        wanted = listened.finals if result.is_final else listened.interims
        spoken = result.language_code
        translated = {t.language_code for t in result.translations if not t.error}
        missing = sorted(wanted - translated - {spoken, ""})
        if missing:
            result.translations.extend(await waiting.translate(missing))
            self._metrics.room_translations.inc(len(missing))
        caption = speech_pb2.StreamCaptionsResponse(
            session_id=self._speaker.id,
            speaker=self._speaker,
            source_language_code=spoken,
            result=result,
        )
        await self._store.append(self.room, caption.SerializeToString(), final=result.is_final)
        if result.is_final:
            self._metrics.room_publish_latency.observe(time.monotonic() - waiting.handed_at)

    async def close(self, timeout_s: float) -> None:
        """Publishes what is waiting (for at most `timeout_s`), then stops."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
