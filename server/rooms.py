"""Caption rooms: many speakers, and listeners who each read them in their own language.

A gateway reads each room its listeners follow once, with one task per room, and hands
every caption to its listeners there; each listener has a bounded queue. A listener that
falls behind loses interims first (a newer revision follows anyway) and is cut off with
RESOURCE_EXHAUSTED only when a final would be lost, so a slow browser tab never holds back
the speakers or the other listeners. A listener that joins starts reading before it
catches up on what came earlier, so that nothing falls between the two, and skips what it
sent already, so that nothing comes twice.

A caption arrives with the translations its speaker's gateway made for the languages the
room was listened in. A final that lacks the listener's language (the listener came after
it was published) is translated on demand, once for all gateways (see
`RoomStore.shared_translation`); an interim that lacks it is skipped.
"""

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from dragoman.api.speech.v1 import speech_pb2
from dragoman.errors import InvalidRequestError, StatusError
from dragoman.gateway.errors import OverloadedError
from dragoman.gateway.metrics import GatewayMetrics
from dragoman.gateway.room_publisher import RoomPublisher
from dragoman.gateway.room_store import (
    START,
    RoomStore,
    StoredCaption,
    listener_key,
    parse_position,
)
from dragoman.gateway.settings import RoomSettings
from dragoman.gateway.translation import Translator

logger = logging.getLogger(__name__)


async def _no_whisper() -> str:
    raise InvalidRequestError(
        "Whisper translates from the utterance's audio, which only the speaker's gateway "
        "holds, and only while the caption is live"
    )


@dataclass(eq=False)
class _Listener:
    interim_results: bool
    queue: asyncio.Queue[StoredCaption | None]
    overflowed: bool = False
    failure: StatusError | None = None

    def fail(self, error: StatusError) -> None:
        self.failure = error
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


@dataclass(eq=False)
class _Reader:
    """The one reader of a room on this gateway."""

    listeners: set[_Listener] = field(default_factory=set)
    started: asyncio.Future[None] = field(default_factory=asyncio.Future)
    task: asyncio.Task[None] | None = None
    stopping: bool = False
    """Set when its last listener leaves: it ends after the read in flight, which is never
    cancelled (a blocking read cancelled mid-way can leave its Redis connection waiting on
    the answer, and hang whoever gets that connection next)."""


class CaptionRooms:
    """Every room this gateway speaks into or listens to."""

    def __init__(
        self,
        store: RoomStore,
        translator: Translator,
        metrics: GatewayMetrics,
        settings: RoomSettings,
    ) -> None:
        self.store = store
        self._translator = translator
        self._metrics = metrics
        self._backlog = settings.caption_backlog
        self._listener_queue = settings.caption_listener_queue
        self._language_ttl_s = settings.caption_language_ttl_s
        self._gateway = uuid.uuid4().hex[:12]
        self._readers: dict[str, _Reader] = {}
        self._listened: Counter[tuple[str, str]] = Counter()
        self._renewal: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    def listeners(self, room: str) -> int:
        """How many listeners follow the room on this gateway now."""
        reader = self._readers.get(room)
        return len(reader.listeners) if reader is not None else 0

    def publisher(self, room: str, speaker: speech_pb2.Speaker) -> RoomPublisher:
        return RoomPublisher(self.store, room, speaker, self._metrics)

    async def listen(
        self, room: str, *, language: str, interim_results: bool, resume_after: str
    ) -> AsyncIterator[speech_pb2.StreamCaptionsResponse]:
        """Recent finals (or those after `resume_after`), then captions as they come, in
        `language` ("" for the spoken one)."""
        if resume_after:
            parse_position(resume_after)
        key = listener_key(language, interim_results, self._gateway)
        if language:
            await self._mark(room, key)
        listener = _Listener(interim_results, asyncio.Queue(self._listener_queue))
        reader = self._reader(room)
        reader.listeners.add(listener)
        try:
            await asyncio.shield(reader.started)
            if resume_after:
                caught_up = await self.store.after(room, resume_after)
            else:
                caught_up = await self.store.recent(room, self._backlog)
            sent = resume_after or START
            finished: dict[str, int] = {}
            for stored in caught_up:
                replayed = await self._render(room, stored, language, replayed=True)
                assert replayed is not None  # a final is always rendered
                finished[replayed.speaker.id] = replayed.result.segment_id
                yield replayed
                sent = stored.position
            while True:
                stored = await self._next(room, listener)
                if stored.final:
                    if parse_position(stored.position) <= parse_position(sent):
                        continue
                    sent = stored.position
                caption = await self._render(room, stored, language, replayed=False)
                if caption is None:
                    continue
                if stored.final:
                    finished[caption.speaker.id] = caption.result.segment_id
                elif caption.result.segment_id <= finished.get(caption.speaker.id, 0):
                    continue
                yield caption
        finally:
            self._leave(room, reader, listener)
            if language:
                self._unmark(room, key)

    async def _next(self, room: str, listener: _Listener) -> StoredCaption:
        while True:
            if listener.overflowed and listener.queue.empty():
                raise OverloadedError(
                    f"this listener fell more than {self._listener_queue} captions behind room "
                    f"{room!r} and missed a final; reconnect with resume_after set to the "
                    "position of the last caption you received"
                )
            if listener.failure is not None and listener.queue.empty():
                raise listener.failure
            stored = await listener.queue.get()
            if stored is not None and (stored.final or listener.interim_results):
                return stored

    def _reader(self, room: str) -> _Reader:
        reader = self._readers.get(room)
        if reader is None:
            reader = self._readers[room] = _Reader()
            reader.task = asyncio.create_task(self._read(room, reader), name=f"room {room} reader")
        return reader

    async def _read(self, room: str, reader: _Reader) -> None:
        """Hands every caption of the room to this gateway's listeners, until they leave or
        the store fails (each listener gets the error)."""
        try:
            cursor = await self.store.end(room)
            reader.started.set_result(None)
            while not reader.stopping:
                captions, cursor = await self.store.read(room, cursor)
                for stored in captions:
                    for listener in reader.listeners:
                        self._deliver(listener, stored)
        except StatusError as error:
            self._fail_reader(reader, error)
        except Exception:
            logger.exception("room %s: its reader failed", room)
            self._fail_reader(
                reader, StatusError(f"internal error reading room {room!r}; it is logged")
            )
        finally:
            if self._readers.get(room) is reader:
                del self._readers[room]

    @staticmethod
    def _fail_reader(reader: _Reader, error: StatusError) -> None:
        if not reader.started.done():
            reader.started.set_exception(error)
        for listener in reader.listeners:
            listener.fail(error)

    @staticmethod
    def _deliver(listener: _Listener, stored: StoredCaption) -> None:
        """Once a final could not be queued, nothing more is: the listener sends what it
        has, then is told to resume after it, and so gets the lost final from the store."""
        if listener.overflowed or not (stored.final or listener.interim_results):
            return
        try:
            listener.queue.put_nowait(stored)
        except asyncio.QueueFull:
            if stored.final:
                listener.overflowed = True

    def _leave(self, room: str, reader: _Reader, listener: _Listener) -> None:
        reader.listeners.discard(listener)
        if not reader.listeners and reader.task is not None:
            self._stop(reader)
            if self._readers.get(room) is reader:
                del self._readers[room]

    def _stop(self, reader: _Reader) -> None:
        """Lets the reader end after its read in flight (at most the store's read wait)."""
        reader.stopping = True
        if reader.task is not None and not reader.task.done():
            self._background.add(reader.task)
            reader.task.add_done_callback(self._background.discard)

    async def _render(
        self, room: str, stored: StoredCaption, language: str, *, replayed: bool
    ) -> speech_pb2.StreamCaptionsResponse | None:
        """The stored caption as this listener reads it; None for an interim that was not
        translated into the listener's language."""
        caption = speech_pb2.StreamCaptionsResponse.FromString(stored.data)
        caption.replayed = replayed
        if stored.final:
            caption.position = stored.position
        translations = {t.language_code: t for t in caption.result.translations}
        del caption.result.translations[:]
        spoken = caption.source_language_code
        if not language or language == spoken:
            caption.language_code = spoken
            caption.text = caption.result.transcript
            return caption
        caption.language_code = language
        translation = translations.get(language)
        if translation is None and not stored.final:
            return None
        if translation is None:
            text = caption.result.transcript

            async def translate() -> speech_pb2.Translation:
                self._metrics.room_translations.inc()
                (translated,) = await self._translator.translate(
                    text,
                    spoken,
                    [language],
                    multilingual=False,
                    whisper=_no_whisper,
                    session_id=caption.speaker.id,
                    segment_id=caption.result.segment_id,
                )
                return translated

            translation = await self.store.shared_translation(
                room, stored.position, language, translate
            )
        caption.translation.CopyFrom(translation)
        caption.text = translation.text if not translation.error else caption.result.transcript
        return caption

    async def _mark(self, room: str, key: str) -> None:
        self._listened[(room, key)] += 1
        if self._listened[(room, key)] == 1:
            try:
                await self.store.mark_listened(room, [key], self._language_ttl_s)
            except BaseException:  # a failure, or the listener gone meanwhile
                self._unmark(room, key)
                raise
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.create_task(self._renew(), name="room languages renewal")

    def _unmark(self, room: str, key: str) -> None:
        self._listened[(room, key)] -= 1
        if self._listened[(room, key)] > 0:
            return
        del self._listened[(room, key)]
        task = asyncio.create_task(self._forget(room, key), name=f"room {room} unmark")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forget(self, room: str, key: str) -> None:
        try:
            await self.store.unmark_listened(room, key)
        except StatusError as error:
            logger.warning("room %s: listener key left to expire: %s", room, error)

    async def _renew(self) -> None:
        """Keeps this gateway's listened languages alive in the store while they are."""
        while self._listened:
            await asyncio.sleep(self._language_ttl_s / 3)
            by_room: dict[str, list[str]] = {}
            for room, key in self._listened:
                by_room.setdefault(room, []).append(key)
            for room, keys in by_room.items():
                try:
                    await self.store.mark_listened(room, keys, self._language_ttl_s)
                except StatusError as error:
                    logger.warning("room %s: languages not renewed: %s", room, error)

    async def close(self) -> None:
        """Stops the readers (each within the store's read wait) and the renewal."""
        for reader in list(self._readers.values()):
            self._stop(reader)
        if self._renewal is not None:
            self._renewal.cancel()
        await asyncio.gather(
            *([self._renewal] if self._renewal is not None else []),
            *self._background,
            return_exceptions=True,
        )
        await self.store.close()
