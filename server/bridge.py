"""The WebSocket bridge: StreamingRecognize for browsers, which cannot stream gRPC.

The protocol is `protos/dragoman/speech/v1/websocket.proto`. Frames become the same
StreamingRecognizeRequest messages a gRPC client sends and drive the same pipeline, so a
browser gets the same results, the same limits and the same errors, with the gRPC status
carried in an `error` message and in the close code (4000 + the status code).
"""

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from aiohttp import WSCloseCode, WSMsgType, web
from google.protobuf import json_format
from opentelemetry import propagate, trace

from dragoman.api.speech.v1 import speech_pb2, websocket_pb2
from dragoman.auth import ANYONE, RECOGNIZE, Authenticator, AuthError, Identity
from dragoman.errors import InvalidRequestError, StatusError
from dragoman.gateway.errors import ClientGoneError, internal_error
from dragoman.gateway.session_manager import SessionManager
from dragoman.logs import session_id_var

logger = logging.getLogger(__name__)

PATH = "/ws/v1/recognize"
JSON_PROTOCOL = "dragoman.speech.v1.json"
PROTO_PROTOCOL = "dragoman.speech.v1.proto"
BEARER_PROTOCOL = "dragoman.bearer."
CLOSE_CODE_BASE = 4000
HEARTBEAT_S = 30.0
"""Pings find peers that vanished without closing (a closed laptop lid)."""


def close_code(status: grpc.StatusCode) -> int:
    """The close code that carries a gRPC status: 4000 + its number (4003 INVALID_ARGUMENT)."""
    return CLOSE_CODE_BASE + status.value[0]


class WebSocketBridge:
    """Serves `PATH`: one WebSocket is one StreamingRecognize stream of the session
    manager, as one gRPC call is."""

    def __init__(
        self,
        sessions: SessionManager,
        *,
        max_message_bytes: int,
        tracer: trace.Tracer,
        authenticator: Authenticator,
    ) -> None:
        self._sessions = sessions
        self._max_message_bytes = max_message_bytes
        self._tracer = tracer
        self._authenticator = authenticator

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(
            protocols=(JSON_PROTOCOL, PROTO_PROTOCOL),
            heartbeat=HEARTBEAT_S,
            max_msg_size=self._max_message_bytes,
        )
        await socket.prepare(request)
        send = _sender(socket)
        caller = ANYONE
        if self._authenticator.enabled:
            try:
                caller = self._authenticator.check(f"Bearer {_token(request)}", RECOGNIZE)
            except AuthError as error:
                logger.info("bridge refused: %s", error)
                await _fail(socket, send, error.code, error.public_message)
                return socket
        session_id = uuid.uuid4().hex
        session_id_var.set(session_id)
        peer = f"websocket:{request.remote}"
        with self._tracer.start_as_current_span(
            PATH, context=propagate.extract(_trace_carrier(request)), kind=trace.SpanKind.SERVER
        ):
            await self._run(socket, send, session_id, peer, caller)
        return socket

    async def _run(
        self,
        socket: web.WebSocketResponse,
        send: Callable[[websocket_pb2.WebSocketResponse], Awaitable[None]],
        session_id: str,
        peer: str,
        caller: Identity,
    ) -> None:
        try:
            async for response in self._sessions.recognize(
                _requests(socket),
                session_id=session_id,
                peer=peer,
                transport="websocket",
                caller=caller,
            ):
                await send(_as_websocket_response(response))
        except ClientGoneError:
            logger.info("bridge client closed the socket without end_of_audio")
        except StatusError as error:
            logger.info("bridge stream failed: %s: %s", error.code.name, error)
            await _fail(socket, send, error.code, str(error))
        except ConnectionResetError:
            logger.info("bridge client went away while results were being sent")
        except Exception:
            logger.exception("bridge stream failed on an unexpected error")
            await _fail(socket, send, grpc.StatusCode.INTERNAL, internal_error(session_id))
        else:
            await socket.close(code=WSCloseCode.OK)


def _token(request: web.Request) -> str:
    """The bearer token: a browser's WebSocket cannot send headers, so it comes as the
    `access_token` query parameter or as a subprotocol `dragoman.bearer.<token>` offered
    beside the encoding one; other clients may send the usual header."""
    offered = request.headers.get("Sec-WebSocket-Protocol", "").split(",")
    from_protocol = next(
        (
            p.strip()[len(BEARER_PROTOCOL) :]
            for p in offered
            if p.strip().startswith(BEARER_PROTOCOL)
        ),
        "",
    )
    header = request.headers.get("Authorization", "").partition(" ")[2]
    return request.query.get("access_token") or from_protocol or header


def _trace_carrier(request: web.Request) -> dict[str, str]:
    """W3C trace context from the headers, or from the query string, because a browser's
    WebSocket cannot set headers (`/ws/v1/recognize?traceparent=00-...`)."""
    return {
        key: request.headers.get(key) or request.query.get(key, "")
        for key in ("traceparent", "tracestate")
    }


def _sender(
    socket: web.WebSocketResponse,
) -> Callable[[websocket_pb2.WebSocketResponse], Awaitable[None]]:
    """Sends responses in the encoding of the subprotocol the client chose (JSON if none)."""
    if socket.ws_protocol == PROTO_PROTOCOL:
        return lambda message: socket.send_bytes(message.SerializeToString())
    return lambda message: socket.send_str(json_format.MessageToJson(message, indent=None))


def _as_websocket_response(
    response: speech_pb2.StreamingRecognizeResponse,
) -> websocket_pb2.WebSocketResponse:
    """Field numbers 1-3 of the two messages are the same, so the bytes carry over."""
    return websocket_pb2.WebSocketResponse.FromString(response.SerializeToString())


async def _fail(
    socket: web.WebSocketResponse,
    send: Callable[[websocket_pb2.WebSocketResponse], Awaitable[None]],
    status: grpc.StatusCode,
    message: str,
) -> None:
    if socket.closed:
        return
    error = websocket_pb2.WebSocketError(code=status.value[0], status=status.name, message=message)
    try:
        await send(websocket_pb2.WebSocketResponse(error=error))
    except ConnectionResetError:
        return
    await socket.close(code=close_code(status), message=status.name.encode())


async def _requests(
    socket: web.WebSocketResponse,
) -> AsyncIterator[speech_pb2.StreamingRecognizeRequest]:
    """The socket's frames as StreamingRecognize requests, until `end_of_audio`."""
    async for frame in socket:
        if frame.type == WSMsgType.BINARY:
            yield speech_pb2.StreamingRecognizeRequest(audio_content=frame.data)
        elif frame.type == WSMsgType.TEXT:
            message = _parse(frame.data)
            kind = message.WhichOneof("request")
            if kind == "end_of_audio":
                return
            if kind == "streaming_config":
                yield speech_pb2.StreamingRecognizeRequest(
                    streaming_config=message.streaming_config
                )
            elif kind == "control":
                yield speech_pb2.StreamingRecognizeRequest(control=message.control)
            elif kind == "resume":
                yield speech_pb2.StreamingRecognizeRequest(resume=message.resume)
            else:
                raise InvalidRequestError(
                    "empty WebSocketRequest: set streamingConfig, resume, control or endOfAudio"
                )
        elif frame.type == WSMsgType.ERROR:
            raise InvalidRequestError(f"the WebSocket failed: {socket.exception()}")
    raise ClientGoneError("the client closed the WebSocket before end_of_audio")


def _parse(text: str) -> websocket_pb2.WebSocketRequest:
    try:
        return json_format.Parse(text, websocket_pb2.WebSocketRequest())
    except json_format.ParseError as error:
        raise InvalidRequestError(
            f"a text frame must be a WebSocketRequest in the protobuf JSON mapping: {error}"
        ) from None
