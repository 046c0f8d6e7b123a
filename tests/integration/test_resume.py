"""Streams that survive their connection: a TCP proxy between client and gateway is cut
mid-utterance, several times in one stream, and the client resumes its session."""

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator

import aiohttp
import grpc
import numpy as np
import pytest
from google.protobuf import json_format

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc, websocket_pb2
from dragoman.clients.audio_file import PcmAudio
from dragoman.clients.streaming import stream_audio, streaming_config
from dragoman.clients.tcp_proxy import CuttableProxy
from dragoman.clients.wer import normalize, word_error_rate
from dragoman.gateway.bridge import JSON_PROTOCOL
from dragoman.launch.redis_server import RedisServer
from dragoman.launch.topology import free_port
from tests.conftest import DATA, own_gateway
from tests.streaming import read_wav, samples, seconds, silence
from tests.websocket import END_OF_AUDIO, Conversation, audio_frames, config_frame, converse

CLIPS = ("en/jfk.wav", "en/librivox-0930.wav")
REFERENCE = "and so my fellow americans ask not what your country can do for you"


@pytest.fixture(scope="module")
def shared(stack, redis_server) -> Iterator:
    """Two gateways that keep their sessions in one real Redis, behind one proxy."""
    settings = {"resume_grace_s": 10.0, "redis_url": redis_server.url}
    with own_gateway(stack, **settings) as first, own_gateway(stack, **settings) as second:
        proxy = CuttableProxy(("127.0.0.1", first.host.port))
        stack.loop.run(proxy.start())
        yield first, second, proxy
        stack.loop.run(proxy.stop())


@pytest.fixture(scope="module")
def resumable(stack) -> Iterator:
    """A gateway that keeps a broken session for 10 s, behind a proxy the test can cut."""
    with own_gateway(stack, resume_grace_s=10.0) as gateway:
        proxy = CuttableProxy(("127.0.0.1", gateway.host.port))
        stack.loop.run(proxy.start())
        yield gateway, proxy
        stack.loop.run(proxy.stop())


def _conversation() -> PcmAudio:
    parts = []
    for clip in CLIPS:
        parts += [samples(read_wav(DATA / clip)), silence(1.5, 16000)]
    return PcmAudio(np.concatenate(parts).astype("<i2").tobytes(), 16000, 1)


async def _finals(
    address: str,
    audio: PcmAudio,
    cut_every_s: tuple[float, ...],
    proxy,
    loop,
    upstreams: tuple[tuple[str, int], ...] = (),
):
    """Streams `audio` at real-time pace, cutting the proxy's connection after each of
    those intervals (and sending it on to the next of `upstreams`, if any); returns the
    finals and every response's sequence."""
    config = streaming_config(audio, language_code="en", interim_results=True)
    finals, sequences = [], []

    async def cut_later() -> None:
        for index, interval_s in enumerate(cut_every_s):
            await asyncio.sleep(interval_s)
            if upstreams:
                proxy.upstream = upstreams[index % len(upstreams)]
            for _ in range(100):  # the client may still be reconnecting
                if await _on(loop, _cut(proxy)):
                    break
                await asyncio.sleep(0.05)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = speech_pb2_grpc.SpeechServiceStub(channel)
        cutter = asyncio.create_task(cut_later())
        async for _, response in stream_audio(stub, audio, config):
            sequences.append(response.sequence)
            if response.HasField("result") and response.result.is_final:
                finals.append(response.result)
        await cutter
    return finals, sequences


async def _cut(proxy: CuttableProxy) -> int:
    return proxy.cut()


async def _on(loop, coroutine):
    """Runs `coroutine` on the servers' loop (where the proxy lives)."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop.loop))


@pytest.fixture(scope="module")
def unbroken(stack, resumable) -> list:
    """The conversation's finals from a stream that was never cut."""
    _, proxy = resumable
    finals, _ = asyncio.run(_finals(proxy.address, _conversation(), (), proxy, stack.loop))
    return finals


def test_a_stream_cut_three_times_gets_every_final_once_in_order(
    stack, resumable, unbroken
) -> None:
    _, proxy = resumable
    cuts = proxy.cuts
    broken, sequences = asyncio.run(
        _finals(proxy.address, _conversation(), (2.0, 3.0, 3.0), proxy, stack.loop)
    )
    assert proxy.cuts == cuts + 3
    _assert_every_final_once(broken, sequences, unbroken)


def _assert_every_final_once(broken: list, sequences: list[int], unbroken: list) -> None:
    assert [r.segment_id for r in broken] == list(range(1, len(broken) + 1))
    ends = [seconds(r.end_offset) for r in broken]
    assert ends == sorted(ends), "offsets continue across the resumes"
    assert sequences == sorted(set(sequences)), "no response twice, none out of order"
    text = normalize(" ".join(r.transcript for r in broken))
    assert REFERENCE in normalize(" ".join(r.transcript for r in unbroken))
    reference = normalize(" ".join(r.transcript for r in unbroken))
    assert word_error_rate([reference], [text]) <= 0.1, (reference, text)
    assert abs(len(broken) - len(unbroken)) <= 1


def test_a_session_moves_between_gateways_with_every_final_once(stack, shared, unbroken) -> None:
    """Each cut sends the connection to the other gateway, which rebuilds the session from
    Redis: the kept responses, the last checkpoint, the audio resent from there."""
    first, second, proxy = shared
    upstreams = (("127.0.0.1", second.host.port), ("127.0.0.1", first.host.port))
    broken, sequences = asyncio.run(
        _finals(proxy.address, _conversation(), (2.0, 3.0, 3.0), proxy, stack.loop, upstreams)
    )
    _assert_every_final_once(broken, sequences, unbroken)
    rebuilt = [_resumes(gateway, "rebuilt") for gateway in (first, second)]
    assert rebuilt == [1.0, 2.0], "each resume was rebuilt on the other gateway"


def _resumes(gateway, kind: str) -> float:
    value = gateway.metrics.registry.get_sample_value(
        "dragoman_gateway_resumes_total", {"kind": kind}
    )
    return value or 0.0


def test_a_resume_on_another_gateway_while_attached_is_refused(stack, shared) -> None:
    first, second, _ = shared
    audio = read_wav(DATA / "en" / "jfk.wav")
    config = speech_pb2.StreamingRecognizeRequest(
        streaming_config=streaming_config(audio, language_code="en")
    )
    chunks = [speech_pb2.StreamingRecognizeRequest(audio_content=c) for c in audio.chunks(100)]
    with (
        grpc.insecure_channel(first.address) as to_first,
        grpc.insecure_channel(second.address) as to_second,
    ):
        attached = speech_pb2_grpc.SpeechServiceStub(to_first).StreamingRecognize(
            _slowly([config, *chunks[:20]]), timeout=30
        )
        token = next(attached).session.resume_token
        other = speech_pb2_grpc.SpeechServiceStub(to_second)
        with pytest.raises(grpc.RpcError) as busy:
            list(_resume(other, token))
        assert busy.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "another gateway" in busy.value.details()
        attached.cancel()
        _detached(first)
        deadline = time.monotonic() + 5
        while True:
            resumed = _resume(other, token, keep_open=True)
            try:
                started = next(resumed)
                break
            except grpc.RpcError as error:
                code = error.code()
            assert code == grpc.StatusCode.FAILED_PRECONDITION
            assert time.monotonic() < deadline, "the detached session was never written"
        assert started.session.resumed
        resumed.cancel()
        with pytest.raises(grpc.RpcError) as ahead:
            list(_resume(speech_pb2_grpc.SpeechServiceStub(to_first), token, 10**6))
        assert ahead.value.code() == grpc.StatusCode.OUT_OF_RANGE


def _resume(stub, token: str, last: int = 0, offset_s: float = 0.0, *, keep_open: bool = False):
    """A resume with no audio; `keep_open` leaves the request stream open (a half-close
    would end the session's audio)."""
    request = speech_pb2.StreamingRecognizeRequest(
        resume=speech_pb2.ResumeSession(resume_token=token, last_sequence=last)
    )
    request.resume.audio_offset.FromNanoseconds(int(offset_s * 1e9))
    requests = _slowly([request]) if keep_open else iter([request])
    return stub.StreamingRecognize(requests, timeout=10)


def test_bad_resumes_get_their_own_status(stack, resumable) -> None:
    gateway, _ = resumable
    audio = read_wav(DATA / "en" / "jfk.wav")
    with grpc.insecure_channel(gateway.address) as channel:
        stub = speech_pb2_grpc.SpeechServiceStub(channel)
        with pytest.raises(grpc.RpcError) as unknown:
            list(_resume(stub, "no-such-token"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

        config = speech_pb2.StreamingRecognizeRequest(
            streaming_config=streaming_config(audio, language_code="en")
        )
        chunks = [speech_pb2.StreamingRecognizeRequest(audio_content=c) for c in audio.chunks(100)]
        sent = chunks[:20]
        attached = stub.StreamingRecognize(_slowly([config, *sent]), timeout=30)
        token = next(attached).session.resume_token
        assert token
        with pytest.raises(grpc.RpcError) as busy:
            list(_resume(stub, token))
        assert busy.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        attached.cancel()
        _detached(gateway)
        for last, offset_s, code, words in (
            (10**6, 0.0, grpc.StatusCode.OUT_OF_RANGE, "ahead"),
            (0, 60.0, grpc.StatusCode.OUT_OF_RANGE, "past the"),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                list(_resume(stub, token, last, offset_s))
            assert refused.value.code() == code
            assert words in refused.value.details()
        wrong = speech_pb2.StreamingRecognizeRequest(audio_content=b"\x01\x02" * 1600)
        resume = speech_pb2.StreamingRecognizeRequest(
            resume=speech_pb2.ResumeSession(resume_token=token)
        )
        with pytest.raises(grpc.RpcError) as mismatch:
            list(stub.StreamingRecognize(iter([resume, wrong]), timeout=10))
        assert mismatch.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "differs" in mismatch.value.details()


def test_a_resume_flood_is_refused(stack) -> None:
    with own_gateway(stack, resume_grace_s=10.0, resume_max_per_minute=3) as gateway:
        audio = read_wav(DATA / "en" / "jfk.wav")
        with grpc.insecure_channel(gateway.address) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            config = speech_pb2.StreamingRecognizeRequest(
                streaming_config=streaming_config(audio, language_code="en")
            )
            first = stub.StreamingRecognize(_slowly([config]), timeout=30)
            token = next(first).session.resume_token
            first.cancel()
            codes = []
            for _ in range(5):
                _detached(gateway)
                call = _resume(stub, token, keep_open=True)
                try:
                    next(call)
                    call.cancel()
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as error:
                    codes.append(error.code())
            assert codes[:3] == [grpc.StatusCode.OK] * 3
            assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[3:]


def _slowly(requests):
    """The requests, then nothing for a while: the connection stays open."""
    yield from requests
    time.sleep(20)


def _detached(gateway, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while any(s.attached for s in gateway.sessions.registry):
        assert time.monotonic() < deadline, "the session never detached"
        time.sleep(0.02)


def test_the_websocket_bridge_resumes_a_session_too(stack, resumable) -> None:
    gateway, _ = resumable
    url = f"ws://{gateway.http_address}/ws/v1/recognize"
    audio = read_wav(DATA / "en" / "jfk.wav")
    frames = audio_frames(audio)
    first = stack.loop.run(_bridge_until_checkpoint(url, frames))
    token = first.messages[0].session.resume_token
    last = max(m.sequence for m in first.messages)
    accounted = [m.checkpoint.accounted_offset for m in first.messages if m.HasField("checkpoint")]
    offset_s = seconds(accounted[-1])
    resume = json.dumps(
        {
            "resume": {
                "resumeToken": token,
                "lastSequence": str(last),
                "audioOffset": f"{offset_s:.6f}s",
            }
        }
    )
    resent = audio.data[round(offset_s * 16000) * 2 :]
    rest = PcmAudio(resent, 16000, 1)
    _detached(gateway)
    second = stack.loop.run(converse(url, [resume, *audio_frames(rest), END_OF_AUDIO]))
    assert second.close_code == 1000, second.errors()
    assert second.messages[0].session.resumed
    assert all(m.sequence > last for m in second.messages[1:])
    finals = [
        r
        for m in first.messages + second.messages
        if m.HasField("result")
        for r in [m.result]
        if r.is_final
    ]
    assert [r.segment_id for r in finals] == list(range(1, len(finals) + 1))
    assert REFERENCE in normalize(" ".join(r.transcript for r in finals))


async def _bridge_until_checkpoint(url: str, frames: list[bytes]) -> Conversation:
    """Sends the config and audio until a checkpoint past 2 s comes back, then drops the
    socket without ending the audio."""
    messages = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, protocols=[JSON_PROTOCOL]) as socket,
    ):
        await socket.send_str(config_frame())
        for frame in frames:
            await socket.send_bytes(frame)
            await asyncio.sleep(0.05)
            while (message := await _poll(socket)) is not None:
                messages.append(json_format.Parse(message, websocket_pb2.WebSocketResponse()))
            if any(
                m.HasField("checkpoint") and seconds(m.checkpoint.accounted_offset) > 2
                for m in messages
            ):
                break
    return Conversation(messages, None)


async def _poll(socket) -> str | None:
    try:
        message = await socket.receive(timeout=0.001)
    except TimeoutError:
        return None
    return message.data if message.type == aiohttp.WSMsgType.TEXT else None


def test_a_gateway_that_shuts_down_hands_its_sessions_over(stack, redis_server) -> None:
    """One session attached and one detached when the gateway drains: the attached one is
    told to resume elsewhere, and both resume on the other gateway."""
    audio = read_wav(DATA / "en" / "jfk.wav")
    config = speech_pb2.StreamingRecognizeRequest(
        streaming_config=streaming_config(audio, language_code="en")
    )
    chunks = [speech_pb2.StreamingRecognizeRequest(audio_content=c) for c in audio.chunks(100)]
    settings = {"resume_grace_s": 10.0, "redis_url": redis_server.url}
    with (
        own_gateway(stack, **settings) as remaining,
        contextlib.ExitStack() as leaving_gateway,
    ):
        leaving = leaving_gateway.enter_context(own_gateway(stack, **settings))
        to_leaving = grpc.insecure_channel(leaving.address)
        stub = speech_pb2_grpc.SpeechServiceStub(to_leaving)
        detached = stub.StreamingRecognize(_slowly([config, *chunks[:10]]), timeout=30)
        detached_token = next(detached).session.resume_token
        detached.cancel()
        _detached(leaving)
        attached = stub.StreamingRecognize(_slowly([config, *chunks[:30]]), timeout=30)
        attached_token = next(attached).session.resume_token
        received = []

        def read_attached() -> None:
            with contextlib.suppress(grpc.RpcError):
                received.extend(attached)

        reader = threading.Thread(target=read_attached)
        reader.start()
        time.sleep(1.0)
        leaving_gateway.close()  # drains while the stream is attached
        reader.join(timeout=10)
        assert attached.code() == grpc.StatusCode.UNAVAILABLE
        last = received[-1]
        assert last.checkpoint.resume_elsewhere, last
        with grpc.insecure_channel(remaining.address) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            for token, sequence in ((attached_token, last.sequence), (detached_token, 0)):
                resumed = _resume(stub, token, sequence, keep_open=True)
                assert next(resumed).session.resumed
                resumed.cancel()
        assert _resumes(remaining, "rebuilt") == 2.0
        to_leaving.close()


def test_a_resume_flood_spread_over_gateways_is_refused(stack, redis_server) -> None:
    settings = {"resume_grace_s": 10.0, "resume_max_per_minute": 3, "redis_url": redis_server.url}
    with own_gateway(stack, **settings) as first, own_gateway(stack, **settings) as second:
        audio = read_wav(DATA / "en" / "jfk.wav")
        config = speech_pb2.StreamingRecognizeRequest(
            streaming_config=streaming_config(audio, language_code="en")
        )
        with (
            grpc.insecure_channel(first.address) as to_first,
            grpc.insecure_channel(second.address) as to_second,
        ):
            stubs = [speech_pb2_grpc.SpeechServiceStub(c) for c in (to_first, to_second)]
            started = stubs[0].StreamingRecognize(_slowly([config]), timeout=30)
            token = next(started).session.resume_token
            started.cancel()
            codes = []
            for attempt in range(5):
                _detached(first)
                _detached(second)
                call = _resume(stubs[(attempt + 1) % 2], token, keep_open=True)
                try:
                    next(call)
                    call.cancel()
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as error:
                    codes.append(error.code())
        assert codes[:3] == [grpc.StatusCode.OK] * 3, codes
        assert codes[3:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2, codes


def test_live_sessions_outlive_a_redis_restart(stack) -> None:
    """Redis restarts empty (it keeps nothing on disk here): a gateway writes its live
    sessions again, and one of them then resumes on the other gateway."""
    redis = RedisServer(free_port())
    stack.loop.run(redis.start())
    settings = {"resume_grace_s": 10.0, "redis_url": redis.url}
    audio = read_wav(DATA / "en" / "jfk.wav")
    config = speech_pb2.StreamingRecognizeRequest(
        streaming_config=streaming_config(audio, language_code="en")
    )
    chunks = [speech_pb2.StreamingRecognizeRequest(audio_content=c) for c in audio.chunks(100)]
    try:
        with (
            own_gateway(stack, **settings) as first,
            own_gateway(stack, **settings) as second,
            grpc.insecure_channel(first.address) as to_first,
            grpc.insecure_channel(second.address) as to_second,
        ):
            call = speech_pb2_grpc.SpeechServiceStub(to_first).StreamingRecognize(
                _slowly([config, *chunks[:20]]), timeout=30
            )
            token = next(call).session.resume_token
            stack.loop.run(redis.stop())
            stack.loop.run(redis.start())
            call.cancel()
            _detached(first)
            other = speech_pb2_grpc.SpeechServiceStub(to_second)
            deadline = time.monotonic() + 10
            while True:
                resumed = _resume(other, token, keep_open=True)
                try:
                    started = next(resumed)
                    break
                except grpc.RpcError as error:
                    code = error.code()
                # NOT_FOUND until written again; UNAVAILABLE from a connection Redis closed
                assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE)
                assert time.monotonic() < deadline, "the session was never written again"
                time.sleep(0.2)
            assert started.session.resumed
            resumed.cancel()
    finally:
        stack.loop.run(redis.close())
