"""gRPC-Web and native gRPC through the real Envoy, as browsers and grpcurl reach the gateway."""

import asyncio
import subprocess
import time
import uuid

import grpc
import httpx

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.clients.wer import normalize
from tests.conftest import DATA
from tests.grpc_web import HEADERS, FrameReader, frame, status, unary
from tests.streaming import audio_requests, config_request, finals, read_wav
from tests.test_cli import grpcurl  # noqa: F401  (a fixture)

SERVICE = "dragoman.speech.v1.SpeechService"


def _url(edge, method: str) -> str:
    return f"http://{edge.address}/{SERVICE}/{method}"


def _recognize_request(audio_content: bytes) -> speech_pb2.RecognizeRequest:
    return speech_pb2.RecognizeRequest(
        config=speech_pb2.RecognitionConfig(
            encoding=speech_pb2.AUDIO_ENCODING_COMPRESSED,
            language_code="en",
            translation_language_codes=["pt"],
        ),
        audio_content=audio_content,
    )


def test_recognize_over_grpc_web_returns_results_and_translations(edge) -> None:
    wav = (DATA / "en" / "jfk.wav").read_bytes()
    request = _recognize_request(wav).SerializeToString()
    messages, code, message = unary(_url(edge, "Recognize"), request)
    assert (code, message) == (0, "")
    [reply] = [speech_pb2.RecognizeResponse.FromString(m) for m in messages]
    transcript = normalize(" ".join(r.transcript for r in reply.results))
    assert "ask not what your country can do for you" in transcript
    assert "país" in " ".join(r.translations[0].text for r in reply.results)


def test_a_grpc_web_error_carries_the_status_and_message(edge) -> None:
    request = speech_pb2.RecognizeRequest(audio_content=b"\x00\x00").SerializeToString()
    messages, code, message = unary(_url(edge, "Recognize"), request)
    assert messages == []
    assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert message == "config is required"


def test_cors_lets_pages_from_other_origins_call_and_read_the_status(edge) -> None:
    origin = {"origin": "http://captions.example"}
    preflight = httpx.options(
        _url(edge, "Recognize"),
        headers={
            **origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web,x-user-agent,traceparent",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://captions.example"
    allowed = preflight.headers["access-control-allow-headers"]
    for header in ("x-grpc-web", "traceparent", "content-type"):
        assert header in allowed
    request = speech_pb2.RecognizeRequest(audio_content=b"\x00\x00").SerializeToString()
    response = httpx.post(
        _url(edge, "Recognize"), content=frame(request), headers={**HEADERS, **origin}
    )
    exposed = response.headers["access-control-expose-headers"]
    assert "grpc-status" in exposed
    assert "grpc-message" in exposed


class CaptionListener:
    """Follows a room over gRPC-Web on the test loop until told to stop."""

    def __init__(self, edge, loop, room: str) -> None:
        self.captions: list[speech_pb2.StreamCaptionsResponse] = []
        self.status: tuple[int, str] | None = None
        self._loop = loop.loop
        self._stopping = asyncio.Event()
        request = speech_pb2.StreamCaptionsRequest(room=room, interim_results=True)
        self._future = asyncio.run_coroutine_threadsafe(
            self._listen(_url(edge, "StreamCaptions"), request), loop.loop
        )

    async def _listen(self, url: str, request: speech_pb2.StreamCaptionsRequest) -> None:
        reader = FrameReader()
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream(
                "POST", url, content=frame(request.SerializeToString()), headers=HEADERS
            ) as response,
        ):

            async def read() -> None:
                async for data in response.aiter_bytes():
                    reader.feed(data)
                    self.captions = [
                        speech_pb2.StreamCaptionsResponse.FromString(m) for m in reader.messages
                    ]

            reading = asyncio.create_task(read())
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait([reading, stopping], return_when=asyncio.FIRST_COMPLETED)
            if reading.done():
                await reading
                self.status = status(response, reader)
            reading.cancel()
            stopping.cancel()

    def finals(self) -> list[speech_pb2.StreamCaptionsResponse]:
        return [c for c in self.captions if c.result.is_final]

    def wait_for_finals(self, count: int, timeout_s: float = 30) -> bool:
        deadline = time.monotonic() + timeout_s
        while len(self.finals()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.finals()) >= count

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._future.result(30)


def _wait_for_listeners(stack, room: str, count: int) -> None:
    rooms = stack.stack.gateway.sessions.rooms
    deadline = time.monotonic() + 30
    while rooms.listeners(room) != count:
        assert time.monotonic() < deadline, f"{rooms.listeners(room)} listeners, not {count}"
        time.sleep(0.05)


def test_captions_stream_to_grpc_web_listeners_and_late_joiners_get_the_backlog(
    stack, edge
) -> None:
    room = f"test-{uuid.uuid4().hex[:8]}"
    live = CaptionListener(edge, stack.loop, room)
    try:
        _wait_for_listeners(stack, room, 1)
        audio = read_wav(DATA / "en" / "jfk.wav")
        speaker = config_request(audio, caption_room=room, interim_results=True)
        speaker.streaming_config.config.translation_language_codes.append("pt")
        with grpc.insecure_channel(edge.address) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            responses = list(
                stub.StreamingRecognize(iter([speaker, *audio_requests(audio)]), timeout=120)
            )
        spoken = [_untranslated(result) for result in finals(responses)]
        session_id = responses[0].session.session_id
        assert live.wait_for_finals(len(spoken))
        heard = live.finals()
        assert [c.result for c in heard] == spoken, "the speaker's own translations stay its own"
        assert {(c.session_id, c.speaker.id) for c in heard} == {(session_id, session_id)}
        assert all(c.language_code == "en" and c.text == c.result.transcript for c in heard)
        assert not any(c.replayed for c in heard)

        late = CaptionListener(edge, stack.loop, room)
        try:
            assert late.wait_for_finals(len(spoken))
            assert [c.result for c in late.finals()] == spoken
            assert all(c.replayed for c in late.captions)
        finally:
            late.stop()
    finally:
        live.stop()
    _wait_for_listeners(stack, room, 0)


def _untranslated(
    result: speech_pb2.StreamingRecognitionResult,
) -> speech_pb2.StreamingRecognitionResult:
    copy = speech_pb2.StreamingRecognitionResult()
    copy.CopyFrom(result)
    del copy.translations[:]
    return copy


def test_an_invalid_room_is_refused_over_grpc_web(edge) -> None:
    request = speech_pb2.StreamCaptionsRequest(room="no spaces allowed").SerializeToString()
    messages, code, message = unary(_url(edge, "StreamCaptions"), request)
    assert messages == []
    assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "not a valid room name" in message


def test_native_grpc_and_reflection_work_through_envoy(edge, grpcurl) -> None:  # noqa: F811
    listed = subprocess.run(
        [str(grpcurl), "-plaintext", edge.address, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert SERVICE in listed.stdout.split()
    health = subprocess.run(
        [
            str(grpcurl),
            "-plaintext",
            "-d",
            f'{{"service": "{SERVICE}"}}',
            edge.address,
            "grpc.health.v1.Health/Check",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert '"SERVING"' in health.stdout


def test_envoy_serves_the_built_page_from_the_gateway(edge) -> None:
    page = httpx.get(f"http://{edge.address}/")
    assert page.status_code == 200, "the page is built by `make web`, which `make test` runs"
    assert "<html" in page.text.lower()
    script = httpx.get(f"http://{edge.address}/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert httpx.get(f"http://{edge.address}/no-such-file.js").status_code == 404
