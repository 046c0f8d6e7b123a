"""`dragoman resume-bench`: streams that lose their connection, measured.

The stack runs in this process (gateway, STT, translation) behind a TCP proxy that the
benchmark cuts every few seconds while a client streams real speech at real-time pace and
resumes by itself (`clients.streaming`). The same audio is streamed once unbroken first,
and the broken run is compared with it:
- the time from each cut to the server's answer to the resume;
- how much later each final arrives than in the unbroken run, for the finals whose
  utterance straddled a cut and for the others;
- the finals lost and duplicated;
- the memory a gateway spends on each detached session it keeps.
With `--across-gateways`, a second gateway and a real redis-server join, and each cut
sends the connection to the other gateway, which rebuilds the session from Redis.
"""

import asyncio
import gc
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
import numpy as np

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.clients.audio_file import PcmAudio, read_pcm
from dragoman.clients.streaming import SendLog, stream_audio, streaming_config
from dragoman.clients.tcp_proxy import CuttableProxy
from dragoman.clients.wer import normalize, word_error_rate
from dragoman.gateway.app import GatewayApp
from dragoman.gateway.settings import GatewaySettings
from dragoman.launch.embedded import EmbeddedStack
from dragoman.launch.redis_server import RedisServer
from dragoman.launch.topology import free_port
from dragoman.settings import updated
from dragoman.stt.settings import SttSettings
from dragoman.translate.settings import TranslateSettings

SPEECH = Path(__file__).resolve().parent.parent / "tests/data/speech"
CLIPS = ("long/lecture-60s.wav", "en/jfk.wav", "en/librivox-0930.wav", "en/goforward.wav")
KEPT_SESSIONS = 50
"""Fewer than the gateway's max_streams (64), as each is a stream until it detaches."""


def _speech() -> PcmAudio:
    parts = [
        np.frombuffer(read_pcm(SPEECH / clip, sample_rate_hz=16000, channels=1).data, "<i2")
        for clip in CLIPS
    ]
    gap = np.zeros(16000, dtype="<i2")
    return PcmAudio(np.concatenate([p for part in parts for p in (part, gap)]).tobytes(), 16000, 1)


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


async def _run(
    address: str,
    audio: PcmAudio,
    proxy: CuttableProxy | None,
    every_s: float,
    drops: int,
    upstreams: Sequence[tuple[str, int]] = (),
) -> tuple[list[tuple[float, speech_pb2.StreamingRecognitionResult]], list[float], SendLog]:
    """(arrival since start, final) of every final, the cut times since start (the stream
    time then, at real-time pace), the log. Each cut sends the proxy on to the next of
    `upstreams`, if any."""
    log = SendLog()
    finals: list[tuple[float, speech_pb2.StreamingRecognitionResult]] = []
    cuts: list[float] = []
    started = time.monotonic()

    async def cutter() -> None:
        assert proxy is not None
        while len(cuts) < drops:
            await asyncio.sleep(every_s)
            if upstreams:
                proxy.upstream = upstreams[len(cuts) % len(upstreams)]
            for _ in range(250):  # the client may still be reconnecting
                if proxy.cut():
                    break
                await asyncio.sleep(0.02)
            cuts.append(time.monotonic() - started)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = speech_pb2_grpc.SpeechServiceStub(channel)
        cutting = asyncio.create_task(cutter()) if proxy is not None else None
        config = streaming_config(audio, language_code="en", speech_events=False)
        async for arrived, response in stream_audio(stub, audio, config, log=log):
            if response.HasField("result") and response.result.is_final:
                finals.append((arrived - started, response.result))
        if cutting is not None:
            cutting.cancel()
    log.resumed_at = [at - started for at in log.resumed_at]
    return finals, cuts, log


async def _kept_session_bytes(address: str, stack: EmbeddedStack) -> float:
    """Resident memory of the process per detached session, from KEPT_SESSIONS sessions
    that each received 5 s of speech and then lost their connection."""
    audio = _speech()
    chunk = audio.data[: 5 * 32000]
    gc.collect()
    before = _rss_bytes()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = speech_pb2_grpc.SpeechServiceStub(channel)
        calls = []
        for _ in range(KEPT_SESSIONS):

            async def requests():
                yield speech_pb2.StreamingRecognizeRequest(
                    streaming_config=streaming_config(audio, language_code="en")
                )
                for start in range(0, len(chunk), 3200):
                    yield speech_pb2.StreamingRecognizeRequest(
                        audio_content=chunk[start : start + 3200]
                    )
                await asyncio.sleep(3600)

            call = stub.StreamingRecognize(requests())
            await call.read()
            calls.append(call)
        await asyncio.sleep(3.0)
        for call in calls:
            call.cancel()
        await asyncio.sleep(1.0)
    assert stack.gateway is not None
    kept = len(stack.gateway.sessions.registry)
    gc.collect()
    return (_rss_bytes() - before) / max(kept, 1)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


async def run_resume_bench(drops: int, every_s: float, *, across_gateways: bool) -> int:
    redis = RedisServer(free_port()) if across_gateways else None
    if redis is not None:
        await redis.start()
    gateway = GatewaySettings(
        port=0,
        http_port=0,
        metrics_port=0,
        resume_grace_s=60.0,
        resume_max_per_minute=200,  # a cut every 1.5 s is a flood by the default
        redis_url=redis.url if redis is not None else "",
        log_level="WARNING",
    )
    stack = EmbeddedStack(
        gateway,
        SttSettings(port=0, metrics_port=0, model="tiny.en", log_level="WARNING"),
        TranslateSettings(port=0, metrics_port=0, log_level="WARNING"),
    )
    address = await stack.start()
    second: GatewayApp | None = None
    upstreams = []
    if across_gateways:
        assert stack.stt is not None
        assert stack.translate is not None
        second = GatewayApp(
            updated(
                gateway,
                stt_target=stack.stt.address,
                translate_target=stack.translate.address,
            )
        )
        await second.start()
        upstreams = [_host_port(second.address), _host_port(address)]
    proxy = CuttableProxy(_host_port(address))
    await proxy.start()
    try:
        audio = _speech()
        where = "two gateways sharing Redis, each cut to the other" if second else "one gateway"
        print(
            f"Resumable streams: {len(audio.data) / 32000:.0f} s of speech at real-time pace, "
            f"{where}"
        )
        unbroken, _, _ = await _run(proxy.address, audio, None, every_s, 0)
        broken, cuts, log = await _run(proxy.address, audio, proxy, every_s, drops, upstreams)
        _report(unbroken, broken, cuts, log)
        per_session = await _kept_session_bytes(address, stack)
        print(
            f"  memory per detached session (5 s of audio received): {per_session / 1024:.0f} KiB"
        )
    finally:
        await proxy.stop()
        if second is not None:
            await second.stop()
        await stack.stop()
        if redis is not None:
            await redis.close()
    return 0


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def _report(unbroken, broken, cuts: list[float], log: SendLog) -> None:
    answers = []
    for cut in cuts:
        later = [at for at in log.resumed_at if at >= cut]
        if later:
            answers.append(later[0] - cut)
    print(f"  {len(cuts)} drops, {len(log.resumed_at)} resumes")
    print(f"  drop → the resumed session's answer: {_ms(answers)}")
    expected = {(r.segment_id, r.transcript) for _, r in unbroken}
    seen = [(r.segment_id, r.transcript) for _, r in broken]
    ids = [r.segment_id for _, r in broken]
    duplicated = len(ids) - len(set(ids))
    matched = expected & set(seen)
    print(
        f"  finals: {len(unbroken)} unbroken, {len(broken)} broken; {len(expected - matched)} "
        f"not matched word for word, {duplicated} duplicated, segment ids "
        f"{'continuous' if ids == list(range(1, len(ids) + 1)) else 'NOT continuous'}"
    )
    reference = normalize(" ".join(r.transcript for _, r in unbroken))
    hypothesis = normalize(" ".join(r.transcript for _, r in broken))
    error_rate = word_error_rate([reference], [hypothesis])
    print(f"  WER of the broken run against the unbroken one: {error_rate:.3f}")
    arrival = {r.segment_id: at for at, r in unbroken}
    straddling, others = [], []
    for at, result in broken:
        if result.segment_id not in arrival:
            continue
        delay = at - arrival[result.segment_id]
        start = result.start_offset.ToNanoseconds() / 1e9
        end = result.end_offset.ToNanoseconds() / 1e9
        (straddling if any(start - 1 <= cut <= end + 1 for cut in cuts) else others).append(delay)
    print(f"  final arrival later than unbroken, straddling a drop: {_ms(straddling)}")
    print(f"  final arrival later than unbroken, others: {_ms(others)}")
