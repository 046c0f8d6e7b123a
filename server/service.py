"""The public SpeechService: the gRPC adapter of the session manager.

It identifies the caller, names the session and turns a StatusError into the call's
status; everything else is the manager's, shared with the WebSocket bridge.
"""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import grpc

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.auth import CAPTIONS, RECOGNIZE, Authenticator
from dragoman.errors import StatusError
from dragoman.gateway.errors import internal_error
from dragoman.gateway.session_manager import SessionManager
from dragoman.logs import session_id_var

logger = logging.getLogger(__name__)


class SpeechServicer(speech_pb2_grpc.SpeechServiceServicer):
    """StreamingRecognize, Recognize and StreamCaptions over gRPC."""

    def __init__(self, sessions: SessionManager, authenticator: Authenticator) -> None:
        self._sessions = sessions
        self._authenticator = authenticator

    async def StreamingRecognize(
        self,
        request_iterator: AsyncIterator[speech_pb2.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[speech_pb2.StreamingRecognizeResponse]:
        session_id = uuid.uuid4().hex
        session_id_var.set(session_id)
        try:
            async for response in self._sessions.recognize(
                aiter(request_iterator),
                session_id=session_id,
                peer=context.peer(),
                transport="grpc",
                caller=self._authenticator.identify(context.invocation_metadata(), RECOGNIZE),
            ):
                yield response
        except StatusError as error:
            logger.info("stream failed: %s: %s", error.code.name, error)
            await context.abort(error.code, str(error))
        except Exception:
            logger.exception("stream failed on an unexpected error")
            await context.abort(grpc.StatusCode.INTERNAL, internal_error(session_id))
        except asyncio.CancelledError:
            logger.info("stream cancelled by the client")
            raise

    async def Recognize(
        self, request: speech_pb2.RecognizeRequest, context: grpc.aio.ServicerContext
    ) -> speech_pb2.RecognizeResponse:
        session_id = uuid.uuid4().hex
        session_id_var.set(session_id)
        try:
            return await self._sessions.recognize_file(request, session_id)
        except StatusError as error:
            await context.abort(error.code, str(error))
        except Exception:
            logger.exception("recognize failed on an unexpected error")
            await context.abort(grpc.StatusCode.INTERNAL, internal_error(session_id))

    async def StreamCaptions(
        self, request: speech_pb2.StreamCaptionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[speech_pb2.StreamCaptionsResponse]:
        try:
            caller = self._authenticator.identify(context.invocation_metadata(), CAPTIONS)
            async for caption in self._sessions.listen(request, caller, context.peer()):
                yield caption
        except StatusError as error:
            logger.info("listener refused: %s: %s", error.code.name, error)
            await context.abort(error.code, str(error))
        except Exception:
            logger.exception("listener failed on an unexpected error")
            await context.abort(
                grpc.StatusCode.INTERNAL,
                "internal error of this listener; it is logged, please report it",
            )
