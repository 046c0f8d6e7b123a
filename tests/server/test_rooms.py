"""Caption rooms over both stores (memory, and a real redis-server): fan-out, catch-up,
resume, languages, translation once, slow listeners and cleanup."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from dragoman.api.speech.v1 import speech_pb2
from dragoman.gateway.errors import OverloadedError
from dragoman.gateway.metrics import GatewayMetrics
from dragoman.gateway.room_store import (
    MemoryRoomStore,
    PositionExpiredError,
    RoomStore,
    RoomStoreUnavailableError,
)
from dragoman.gateway.room_store_redis import RedisRoomStore
from dragoman.gateway.rooms import CaptionRooms
from dragoman.gateway.settings import RoomSettings
from dragoman.gateway.translation import Translator
from dragoman.launch.redis_server import RedisServer
from dragoman.launch.topology import free_port
from dragoman.metrics import Metrics

Captions = AsyncIterator[speech_pb2.StreamCaptionsResponse]
room_counter = iter(range(1_000_000))


@pytest.fixture(params=["memory", "redis"])
def new_store(request, redis_server: RedisServer) -> Callable[..., RoomStore]:
    """Builds the store of each gateway: the one memory store of the process, or a client
    of the shared Redis server each (so several of them are several gateways)."""
    memory: dict[int, MemoryRoomStore] = {}

    def build(history: int = 100) -> RoomStore:
        if request.param == "memory":
            if history not in memory:
                memory[history] = MemoryRoomStore(history=history, ttl_s=60, read_wait_s=0.2)
            return memory[history]
        return RedisRoomStore(
            redis_server.url, history=history, ttl_s=60, timeout_s=1, read_wait_s=0.2
        )

    return build


@pytest.fixture
def room() -> str:
    """A fresh room name, as the Redis server is shared by the whole session."""
    return f"room-{next(room_counter)}"


def _rooms(
    store: RoomStore, *, backlog: int = 20, queue: int = 64, translator: object = None
) -> CaptionRooms:
    return CaptionRooms(
        store,
        translator or Translator(None),
        GatewayMetrics(Metrics("gateway")),
        RoomSettings(
            caption_backlog=backlog, caption_listener_queue=queue, caption_language_ttl_s=5
        ),
    )


def _result(
    segment_id: int, *, final: bool, language: str = "en"
) -> speech_pb2.StreamingRecognitionResult:
    return speech_pb2.StreamingRecognitionResult(
        segment_id=segment_id,
        is_final=final,
        transcript=f"segment {segment_id}",
        language_code=language,
    )


class LateTranslator:
    """Stands in for the translation service of a listener's gateway (Translator's call)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def translate(
        self, text: str, source: str, targets: Sequence[str], **_: object
    ) -> list[speech_pb2.Translation]:
        self.calls.append((text, targets[0]))
        await asyncio.sleep(0.05)
        return [speech_pb2.Translation(language_code=targets[0], text="late", backend="x")]


class CountingTranslator:
    """Stands in for the speaking stream's translation: counts (segment, language)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def into(
        self, segment_id: int
    ) -> Callable[[Sequence[str]], Awaitable[list[speech_pb2.Translation]]]:
        async def translate(targets: Sequence[str]) -> list[speech_pb2.Translation]:
            self.calls.extend((segment_id, target) for target in targets)
            return [
                speech_pb2.Translation(
                    language_code=t, text=f"[{t}] segment {segment_id}", backend="test"
                )
                for t in targets
            ]

        return translate


async def _take(
    listener: Captions, count: int, timeout_s: float = 5
) -> list[speech_pb2.StreamCaptionsResponse]:
    async with asyncio.timeout(timeout_s):
        return [await anext(listener) for _ in range(count)]


async def _started(listener: Captions) -> asyncio.Task[speech_pb2.StreamCaptionsResponse]:
    """The listener's first caption, as a task: it has joined (and started reading) once
    the room shows it."""
    task = asyncio.ensure_future(asyncio.wait_for(anext(listener), 5))
    await asyncio.sleep(0.05)
    return task


def _speaker(rooms: CaptionRooms, room: str, name: str):
    return rooms.publisher(room, speech_pb2.Speaker(id=f"id-{name}", label=name))


def test_listeners_read_each_speaker_in_their_own_language(new_store, room) -> None:
    async def scenario() -> None:
        speaking, listening = _rooms(new_store()), _rooms(new_store())
        german = listening.listen(room, language="de", interim_results=False, resume_after="")
        original = listening.listen(room, language="", interim_results=False, resume_after="")
        first_german, first_original = await _started(german), await _started(original)
        translator = CountingTranslator()
        ana, bruno = _speaker(speaking, room, "Ana"), _speaker(speaking, room, "Bruno")
        ana.offer(_result(1, final=True), translator.into(1))
        bruno.offer(_result(1, final=True, language="es"), translator.into(1))
        for publisher in (ana, bruno):
            await publisher.close(5)
        heard = [await first_german, *await _take(german, 1)]
        assert {(c.speaker.label, c.language_code, c.text) for c in heard} == {
            ("Ana", "de", "[de] segment 1"),
            ("Bruno", "de", "[de] segment 1"),
        }
        assert {c.source_language_code for c in heard} == {"en", "es"}
        assert all(c.translation.backend == "test" and not c.result.translations for c in heard)
        assert all(c.position and not c.replayed for c in heard)
        heard = [await first_original, *await _take(original, 1)]
        assert {(c.speaker.label, c.language_code, c.text) for c in heard} == {
            ("Ana", "en", "segment 1"),
            ("Bruno", "es", "segment 1"),
        }
        assert not any(c.HasField("translation") for c in heard)
        assert sorted(translator.calls) == [(1, "de"), (1, "de")]
        for listener in (german, original):
            await listener.aclose()
        await speaking.close()
        await listening.close()

    asyncio.run(scenario())


def test_a_final_is_translated_once_per_language_whatever_the_listeners(new_store, room) -> None:
    async def scenario() -> None:
        gateways = [_rooms(new_store()) for _ in range(3)]
        listeners = [
            gateway.listen(room, language=language, interim_results=False, resume_after="")
            for gateway in gateways
            for language in ("de", "pt", "de")
        ]
        firsts = [await _started(listener) for listener in listeners]
        translator = CountingTranslator()
        speaker = _speaker(gateways[0], room, "Ana")
        mine = _result(1, final=True)
        mine.translations.add(language_code="pt", text="[pt] mine", backend="speaker")
        speaker.offer(mine, translator.into(1))
        speaker.offer(_result(2, final=True), translator.into(2))
        await speaker.close(5)
        for listener, first in zip(listeners, firsts, strict=True):
            heard = [await first, *await _take(listener, 1)]
            assert [c.result.segment_id for c in heard] == [1, 2]
        assert sorted(translator.calls) == [(1, "de"), (2, "de"), (2, "pt")]
        for listener in listeners:
            await listener.aclose()
        for gateway in gateways:
            await gateway.close()

    asyncio.run(scenario())


def test_late_joiners_get_recent_finals_translated_once_for_every_gateway(new_store, room) -> None:
    async def scenario() -> None:
        on_demand = LateTranslator()
        speaking = _rooms(new_store(), backlog=2)
        late = [_rooms(new_store(), backlog=2, translator=on_demand) for _ in range(2)]
        speaker = _speaker(speaking, room, "Ana")
        translator = CountingTranslator()
        for segment_id in (1, 2, 3):
            speaker.offer(_result(segment_id, final=True), translator.into(segment_id))
        await speaker.close(5)
        assert translator.calls == []
        listeners = [
            gateway.listen(room, language="fr", interim_results=False, resume_after="")
            for gateway in late
        ]
        replays = await asyncio.gather(*(_take(listener, 2) for listener in listeners))
        for replay in replays:
            assert [c.result.segment_id for c in replay] == [2, 3]
            assert all(c.replayed and c.text == "late" for c in replay)
        assert sorted(on_demand.calls) == [("segment 2", "fr"), ("segment 3", "fr")]
        for listener in listeners:
            await listener.aclose()
        for gateway in [speaking, *late]:
            await gateway.close()

    asyncio.run(scenario())


def test_a_listener_that_resumes_gets_exactly_what_it_missed(new_store, room) -> None:
    async def scenario() -> None:
        rooms = _rooms(new_store())
        speaker = _speaker(rooms, room, "Ana")
        translator = CountingTranslator()
        listener = rooms.listen(room, language="", interim_results=False, resume_after="")
        first = await _started(listener)
        speaker.offer(_result(1, final=True), translator.into(1))
        speaker.offer(_result(2, final=True), translator.into(2))
        heard = [await first, *await _take(listener, 1)]
        await listener.aclose()
        for segment_id in (3, 4):
            speaker.offer(_result(segment_id, final=True), translator.into(segment_id))
        await asyncio.sleep(0.1)
        resumed = rooms.listen(
            room, language="", interim_results=False, resume_after=heard[0].position
        )
        again = await _take(resumed, 3)
        assert [(c.result.segment_id, c.replayed) for c in again] == [
            (2, True),
            (3, True),
            (4, True),
        ]
        speaker.offer(_result(5, final=True), translator.into(5))
        (live,) = await _take(resumed, 1)
        assert (live.result.segment_id, live.replayed) == (5, False)
        await resumed.aclose()
        await speaker.close(5)
        await rooms.close()

    asyncio.run(scenario())


def test_a_position_the_room_no_longer_keeps_is_out_of_range(new_store, room) -> None:
    async def scenario() -> None:
        store = new_store(history=2)
        first = await store.append(room, b"1", final=True)
        for data in (b"2", b"3", b"4"):
            await store.append(room, data, final=True)
        if isinstance(store, RedisRoomStore):
            # Redis trims approximately (whole nodes); force the trim as a long room would.
            await store._redis.xtrim(
                f"dragoman:room:{{{room}}}:finals", maxlen=2, approximate=False
            )
        with pytest.raises(PositionExpiredError, match="no longer keeps"):
            await store.after(room, first)
        await store.close()

    asyncio.run(scenario())


def test_interims_reach_only_listeners_who_want_them_translated(new_store, room) -> None:
    async def scenario() -> None:
        rooms = _rooms(new_store())
        translator = CountingTranslator()
        with_interims = rooms.listen(room, language="de", interim_results=True, resume_after="")
        finals_only = rooms.listen(room, language="de", interim_results=False, resume_after="")
        first, first_final = await _started(with_interims), await _started(finals_only)
        speaker = _speaker(rooms, room, "Ana")
        speaker.offer(_result(1, final=False), translator.into(1))
        await asyncio.sleep(0.3)
        speaker.offer(_result(1, final=True), translator.into(1))
        heard = [await first, *await _take(with_interims, 1)]
        assert [(c.result.is_final, c.text) for c in heard] == [
            (False, "[de] segment 1"),
            (True, "[de] segment 1"),
        ]
        assert not heard[0].position
        assert (await first_final).result.is_final
        for listener in (with_interims, finals_only):
            await listener.aclose()
        await speaker.close(5)
        await rooms.close()

    asyncio.run(scenario())


def test_listened_languages_expire_when_their_gateway_stops_renewing(new_store, room) -> None:
    async def scenario() -> None:
        store = new_store()
        await store.mark_listened(room, ["de|final|gw1", "pt|interim|gw2"], 0.3)
        listened = await store.listened(room)
        assert listened.finals == {"de", "pt"}
        assert listened.interims == {"pt"}
        await asyncio.sleep(0.5)
        assert not (await store.listened(room)).finals
        await store.close()

    asyncio.run(scenario())


def test_a_slow_listener_loses_interims_first_then_is_cut_off(new_store, room) -> None:
    async def scenario() -> None:
        rooms = _rooms(new_store(), backlog=0, queue=2)
        translator = CountingTranslator()
        listener = rooms.listen(room, language="", interim_results=True, resume_after="")
        first = await _started(listener)
        speaker = _speaker(rooms, room, "Ana")
        speaker.offer(_result(1, final=True), translator.into(1))
        assert (await first).result.segment_id == 1
        for segment_id in range(2, 8):
            speaker.offer(_result(segment_id, final=True), translator.into(segment_id))
            await asyncio.sleep(0.02)
        await speaker.close(5)
        await asyncio.sleep(0.3)
        heard = [1]
        captions = []

        async def drain() -> None:
            async for caption in listener:
                captions.append(caption)

        with pytest.raises(OverloadedError, match="resume_after"):
            await asyncio.wait_for(drain(), 5)
        heard += [c.result.segment_id for c in captions]
        position = captions[-1].position
        assert heard == list(range(1, len(heard) + 1)), "nothing after a lost final is sent"
        assert rooms.listeners(room) == 0
        resumed = rooms.listen(room, language="", interim_results=False, resume_after=position)
        rest = await _take(resumed, 7 - len(heard))
        assert heard + [c.result.segment_id for c in rest] == list(range(1, 8))
        await resumed.aclose()
        await rooms.close()

    asyncio.run(scenario())


def test_a_room_store_that_is_down_fails_listeners_and_spares_speakers(room) -> None:
    async def scenario() -> None:
        server = RedisServer(free_port())
        await server.start()
        rooms = _rooms(
            RedisRoomStore(server.url, history=10, ttl_s=60, timeout_s=0.5, read_wait_s=0.2)
        )
        listener = rooms.listen(room, language="", interim_results=False, resume_after="")
        first = await _started(listener)
        await server.stop()
        with pytest.raises(RoomStoreUnavailableError, match="Redis"):
            await asyncio.wait_for(first, 5)
        speaker = _speaker(rooms, room, "Ana")
        speaker.offer(_result(1, final=True), CountingTranslator().into(1))
        await speaker.close(5)
        failures = rooms._metrics.room_publish_failures.labels("store")._value.get()
        assert failures == 1
        await server.start()
        again = rooms.listen(room, language="", interim_results=False, resume_after="")
        first = await _started(again)
        speaker = _speaker(rooms, room, "Ana")
        speaker.offer(_result(2, final=True), CountingTranslator().into(2))
        assert (await asyncio.wait_for(first, 5)).result.segment_id == 2
        await again.aclose()
        await speaker.close(5)
        await rooms.close()
        await server.close()

    asyncio.run(scenario())
