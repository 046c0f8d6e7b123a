"""`dragoman room-bench`: caption rooms across gateways, measured as listeners feel them.

It starts the stack's topology (two gateway processes, one STT and one translation
replica, a redis-server), then:
1. a speaker streams real speech at real-time pace into a room on gateway 1 while
   listeners on gateway 2 follow it, in the spoken language and in Portuguese: for each
   final, the time from the speaker receiving it (its pipeline's output) to each listener
   receiving its caption;
2. N listeners join one room on gateway 2 (N growing), captions are appended to the room
   in Redis at a steady rate, and each listener's delivery time from the append is taken:
   how many listeners one gateway holds with finals still within 100 ms.
"""

import asyncio
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.clients.audio_file import read_pcm
from dragoman.gateway.room_store_redis import RedisRoomStore
from dragoman.gateway.settings import GatewaySettings
from dragoman.launch.stack_settings import EdgeSettings, TopologySettings
from dragoman.launch.topology import Topology
from dragoman.stt.settings import SttSettings
from dragoman.translate.settings import TranslateSettings

SPEECH = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "data"
    / "speech"
    / "long"
    / "lecture-60s.wav"
)
CHUNK_S = 0.1
DELIVERY_TARGET_S = 0.1
LISTENERS_PER_CHANNEL = 100
CROWD_CAPTIONS = 10


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _describe(values: Sequence[float]) -> str:
    if not values:
        return "no samples"
    p50, p95 = statistics.median(values) * 1000, _percentile(values, 0.95) * 1000
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {max(values) * 1000:.0f} ms"


async def _follow(
    stub: speech_pb2_grpc.SpeechServiceStub, room: str, language: str, arrivals: dict[str, float]
) -> None:
    """Records when each final caption arrives, by its original transcript."""
    call = stub.StreamCaptions(speech_pb2.StreamCaptionsRequest(room=room, language_code=language))
    async for caption in call:
        if caption.result.is_final and not caption.replayed:
            arrivals[caption.result.transcript] = time.monotonic()


async def _speaker_to_listeners(speaking: str, listening: str, seconds: float) -> None:
    audio = read_pcm(SPEECH)
    room = f"latency-{int(time.time())}"
    async with (
        grpc.aio.insecure_channel(speaking) as speaker_channel,
        grpc.aio.insecure_channel(listening) as listener_channel,
    ):
        listener = speech_pb2_grpc.SpeechServiceStub(listener_channel)
        original: dict[str, float] = {}
        portuguese: dict[str, float] = {}
        followers = [
            asyncio.create_task(_follow(listener, room, "", original)),
            asyncio.create_task(_follow(listener, room, "pt", portuguese)),
        ]
        await asyncio.sleep(1.0)
        config = speech_pb2.StreamingRecognitionConfig(
            config=speech_pb2.RecognitionConfig(
                encoding=speech_pb2.AUDIO_ENCODING_LINEAR16,
                sample_rate_hertz=audio.sample_rate_hz,
                audio_channel_count=audio.channels,
                language_code="en",
            ),
            caption_room=room,
            speaker_label="bench",
        )

        async def requests():
            yield speech_pb2.StreamingRecognizeRequest(streaming_config=config)
            started = time.monotonic()
            for index, chunk in enumerate(audio.chunks(int(CHUNK_S * 1000))):
                if index * CHUNK_S > seconds:
                    break
                await asyncio.sleep(max(0.0, started + index * CHUNK_S - time.monotonic()))
                yield speech_pb2.StreamingRecognizeRequest(audio_content=chunk)

        spoken: dict[str, float] = {}
        stub = speech_pb2_grpc.SpeechServiceStub(speaker_channel)
        async for response in stub.StreamingRecognize(requests()):
            if response.result.is_final and response.result.transcript:
                spoken[response.result.transcript] = time.monotonic()
        await asyncio.sleep(3.0)
        for follower in followers:
            follower.cancel()
    for name, arrivals in (("original", original), ("pt (translated)", portuguese)):
        delays = [arrivals[text] - at for text, at in spoken.items() if text in arrivals]
        missing = len(spoken) - len(delays)
        print(
            f"  final → listener on the other gateway, {name}: {_describe(delays)} "
            f"({len(delays)} finals{f', {missing} missing' if missing else ''})"
        )


async def _crowd(listening: str, store: RedisRoomStore, count: int) -> list[float]:
    """Delivery delays of CROWD_CAPTIONS finals appended to a room that `count` listeners
    of one gateway follow; the caption's transcript is its append time."""
    room = f"crowd-{count}-{int(time.time())}"
    delays: list[float] = []
    channels = [
        grpc.aio.insecure_channel(listening) for _ in range(-(-count // LISTENERS_PER_CHANNEL))
    ]

    async def listen(channel: grpc.aio.Channel) -> None:
        call = speech_pb2_grpc.SpeechServiceStub(channel).StreamCaptions(
            speech_pb2.StreamCaptionsRequest(room=room)
        )
        async for caption in call:
            delays.append(time.time() - float(caption.result.transcript))

    tasks = [
        asyncio.create_task(listen(channels[i // LISTENERS_PER_CHANNEL])) for i in range(count)
    ]
    await asyncio.sleep(2.0 + count / 500)
    for _ in range(CROWD_CAPTIONS):
        caption = speech_pb2.StreamCaptionsResponse(
            speaker=speech_pb2.Speaker(id="bench", label="bench"),
            source_language_code="en",
            result=speech_pb2.StreamingRecognitionResult(
                is_final=True, transcript=repr(time.time()), language_code="en"
            ),
        )
        await store.append(room, caption.SerializeToString(), final=True)
        await asyncio.sleep(0.5)
    await asyncio.sleep(2.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    return delays


async def _many_listeners(listening: str, redis_url: str, counts: Sequence[int]) -> None:
    store = RedisRoomStore(redis_url, history=1000, ttl_s=600, timeout_s=1)
    for count in counts:
        delays = await _crowd(listening, store, count)
        expected = count * CROWD_CAPTIONS
        within = sum(delay <= DELIVERY_TARGET_S for delay in delays) / expected
        print(
            f"  {count:>5} listeners on one gateway: delivery {_describe(delays)}; "
            f"{len(delays)}/{expected} delivered, {within:.1%} within 100 ms"
        )
    await store.close()


async def run_room_bench(seconds: float, counts: Sequence[int]) -> int:
    topology = Topology(
        TopologySettings(gateways=2, stt_replicas=1, translate_replicas=1),
        GatewaySettings(port=0, http_port=0, metrics_port=0, log_level="WARNING"),
        SttSettings(model="tiny.en", log_level="WARNING"),
        TranslateSettings(log_level="WARNING"),
        EdgeSettings(enabled=False),
    )
    await topology.start()
    try:
        speaking, listening = (gateway.address for gateway in topology.gateways)
        assert topology.redis is not None
        print(f"Caption rooms across two gateway processes, Redis {topology.redis.url}:")
        await _speaker_to_listeners(speaking, listening, seconds)
        await _many_listeners(listening, topology.redis.url, counts)
    finally:
        await topology.stop()
    return 0
