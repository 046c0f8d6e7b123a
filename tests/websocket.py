"""A WebSocket bridge client for tests: frames out, every server message and the close in."""

import json
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from google.protobuf import json_format

from dragoman.api.speech.v1 import websocket_pb2
from dragoman.clients.audio_file import PcmAudio
from dragoman.gateway.bridge import JSON_PROTOCOL, PROTO_PROTOCOL

END_OF_AUDIO = json.dumps({"endOfAudio": {}})
Frame = str | bytes


@dataclass
class Conversation:
    messages: list[websocket_pb2.WebSocketResponse]
    close_code: int | None

    def results(self) -> list:
        return [m.result for m in self.messages if m.HasField("result")]

    def finals(self) -> list:
        return [r for r in self.results() if r.is_final]

    def errors(self) -> list[websocket_pb2.WebSocketError]:
        return [m.error for m in self.messages if m.HasField("error")]


def config_frame(language: str = "en", targets: Iterable[str] = (), **streaming: object) -> str:
    return json.dumps(
        {
            "streamingConfig": {
                "config": {
                    "encoding": "AUDIO_ENCODING_LINEAR16",
                    "sampleRateHertz": 16000,
                    "audioChannelCount": 1,
                    "languageCode": language,
                    "translationLanguageCodes": list(targets),
                },
                **streaming,
            }
        }
    )


def audio_frames(audio: PcmAudio, chunk_ms: int = 100) -> list[bytes]:
    return list(audio.chunks(chunk_ms))


async def converse(
    url: str,
    frames: Iterable[Frame],
    *,
    protocol: str = JSON_PROTOCOL,
    extra_protocols: Iterable[str] = (),
    timeout_s: float = 120,
) -> Conversation:
    """Sends every frame, then reads until the server closes the socket."""
    messages: list[websocket_pb2.WebSocketResponse] = []
    timeout = aiohttp.ClientWSTimeout(ws_close=timeout_s)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, protocols=[protocol, *extra_protocols], timeout=timeout) as socket,
    ):
        assert socket.protocol == protocol
        for frame in frames:
            if isinstance(frame, bytes):
                await socket.send_bytes(frame)
            else:
                await socket.send_str(frame)
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                assert protocol == JSON_PROTOCOL
                messages.append(json_format.Parse(message.data, websocket_pb2.WebSocketResponse()))
            elif message.type == aiohttp.WSMsgType.BINARY:
                assert protocol == PROTO_PROTOCOL
                messages.append(websocket_pb2.WebSocketResponse.FromString(message.data))
        return Conversation(messages, socket.close_code)
