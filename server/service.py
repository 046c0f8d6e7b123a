"""The public SpeechService: translates between the wire and recognition streams."""

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

import grpc
from dragoman.gateway import config
from dragoman.gateway.durations import duration, seconds
from dragoman.gateway.errors import (
    DrainingError,
    GatewayError,
    InvalidRequestError,
    OverloadedError,
    PermissionDeniedError,
)
from dragoman.gateway.metrics import GatewayMetrics
from dragoman.gateway.room_publisher import RoomPublisher
from dragoman.gateway.rooms import CaptionRooms
from dragoman.gateway.segmenter import STREAM_START, StreamPosition
from dragoman.gateway.sessions import Session, SessionRegistry
from dragoman.gateway.settings import GatewaySettings
from dragoman.gateway.stream import RecognitionStream, StreamTuning
from dragoman.gateway.stt_client import SttClient
from dragoman.gateway.translation import Translator
from dragoman.gateway.utterance_spans import UtteranceSpans
from dragoman.gateway.vad import SileroModel
from opentelemetry import trace

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.auth import CAPTIONS, RECOGNIZE, Authenticator, Identity
from dragoman.logs import session_id_var

logger = logging.getLogger(__name__)


class SpeechServicer(speech_pb2_grpc.SpeechServiceServicer):
    """StreamingRecognize and Recognize over one shared STT client and VAD model."""

    def __init__(
        self,
        settings: GatewaySettings,
        stt: SttClient,
        translator: Translator,
        vad_model: SileroModel,
        tuning: StreamTuning,
        rooms: CaptionRooms,
        tracer: trace.Tracer,
        metrics: GatewayMetrics,
        authenticator: Authenticator,
        sessions: SessionRegistry,
    ) -> None:
        self._settings = settings
        self._authenticator = authenticator
        self._stt = stt
        self._translator = translator
        self._vad_model = vad_model
        self._tuning = tuning
        self.rooms = rooms
        self._tracer = tracer
        self.metrics = metrics
        self.active_streams = 0
        self._streams: set[RecognitionStream] = set()
        self._sessions = sessions
        self._sessions.on_end(self._session_ended)
        self._closing: set[asyncio.Task[None]] = set()
        self._drain_cut_s: float | None = None

    def drain(self, grace_s: float) -> None:
        """Refuses new streams and ends every open one at its next pause; streams whose
        sessions are handed over to another gateway (`SessionRegistry.hand_over`) are not
        waited for.

        An utterance in progress may go on for half the grace period; the other half is
        left for its final transcription and translation, so that what was said is
        delivered before the server stops.
        """
        self._drain_cut_s = grace_s / 2
        handed_over = {session.stream for session in self._sessions if session.shared}
        logger.info("draining %d streams", len(self._streams))
        for stream in self._streams - handed_over:
            stream.drain(
                self._drain_cut_s,
                DrainingError(
                    "the gateway is shutting down: this stream ended after the final result "
                    "of its last utterance; reconnect to continue"
                ),
            )

    async def _open(
        self,
        options: config.StreamOptions,
        session_id: str,
        *,
        live: bool = True,
        room: RoomPublisher | None = None,
        start: StreamPosition = STREAM_START,
    ) -> RecognitionStream:
        if self._drain_cut_s is not None:
            raise DrainingError("the gateway is shutting down; retry on another replica")
        model = await self._stt.resolve(options.model, options.language_code)
        await self._translator.check(
            options.language_code,
            options.translation_targets,
            multilingual=not model.english_only,
        )
        return RecognitionStream(
            options,
            model,
            session_id=session_id,
            stt=self._stt,
            vad_model=self._vad_model,
            tuning=self._tuning,
            translator=self._translator,
            spans=UtteranceSpans(self._tracer, session_id=session_id, model=model.name),
            metrics=self.metrics,
            live=live,
            room=room,
            start=start,
        )

    async def recognize_stream(
        self,
        requests: AsyncIterator[speech_pb2.StreamingRecognizeRequest],
        *,
        session_id: str,
        peer: str,
        transport: str,
        caller: Identity,
    ) -> AsyncIterator[speech_pb2.StreamingRecognizeResponse]:
        """The StreamingRecognize pipeline for any transport (gRPC or the WebSocket bridge):
        raises GatewayError for the transport to turn into its own status."""
        self.active_streams += 1
        self.metrics.streams.labels(transport).inc()
        current = asyncio.current_task()
        if current is not None:
            current.set_name(f"session {session_id}")
        self.metrics.active_streams.labels(transport).inc()
        trace.get_current_span().set_attribute("dragoman.session_id", session_id)
        session: Session | None = None
        try:
            if self.active_streams > self._settings.max_streams:
                raise OverloadedError(
                    f"this gateway already serves its maximum of {self._settings.max_streams} "
                    "streams; retry in a few seconds (another replica may have room)"
                )
            first = await anext(requests, None)
            if first is None:
                raise InvalidRequestError(
                    "the stream ended before its first message: send streaming_config first"
                )
            kind = first.WhichOneof("streaming_request")
            if kind not in ("streaming_config", "resume"):
                raise InvalidRequestError(
                    "the first message must carry streaming_config (or resume), not "
                    f"{kind or 'nothing'}"
                )
            if first.HasField("resume"):
                session = await self._resume(first.resume, caller, peer)
                last_sequence = first.resume.last_sequence
                offset_s = seconds(first.resume.audio_offset)
            else:
                session = await self._start(first.streaming_config, session_id, peer, caller)
                last_sequence, offset_s = 0, 0.0
            yield speech_pb2.StreamingRecognizeResponse(
                session=speech_pb2.SessionStarted(
                    session_id=session.session_id,
                    model=session.stream.model_name,
                    resume_token=session.token if session.resumable else "",
                    resumed=first.HasField("resume"),
                )
            )
            async for response in session.attach(
                requests, last_sequence=last_sequence, audio_offset_s=offset_s
            ):
                yield response
        except GatewayError as error:
            self.metrics.stream_errors.labels(transport, error.code.name).inc()
            raise
        finally:
            if isinstance(requests, AsyncGenerator):
                await requests.aclose()  # a stream left early is closed here, not by the GC
            self.active_streams -= 1
            self.metrics.active_streams.labels(transport).dec()
            logger.info(
                "connection ended after %.2f s of audio",
                session.stream.audio_seconds if session else 0.0,
            )

    async def _start(
        self,
        streaming: speech_pb2.StreamingRecognitionConfig,
        session_id: str,
        peer: str,
        caller: Identity,
    ) -> Session:
        options = self._options(streaming)
        stream = await self._open_stream(options, session_id, caller)
        logger.info(
            "stream started: %s at %d Hz x%d, language %s, model %s, room %s, peer %s",
            options.encoding,
            options.sample_rate_hz,
            options.channels,
            options.language_code or "auto",
            stream.model_name,
            options.caption_room or "none",
            peer,
        )
        return await self._sessions.start(
            session_id,
            caller.subject,
            stream,
            streaming,
            sample_rate_hz=options.sample_rate_hz,
            frame_bytes=2 * options.channels,
            resumable=options.encoding == "LINEAR16" and self._settings.resume_grace_s > 0,
        )

    async def _resume(
        self, resume: speech_pb2.ResumeSession, caller: Identity, peer: str
    ) -> Session:
        """This gateway's own session, or one rebuilt here from the session store."""
        offset_s = seconds(resume.audio_offset)
        found = await self._sessions.find(resume.resume_token, caller.subject)
        if isinstance(found, Session):
            found.check_resume(resume.last_sequence, offset_s)
            await self._sessions.claim(found)
            session = found
        else:
            options = dataclasses.replace(
                self._options(found.config),
                language_code=found.spoken,
                translation_targets=found.targets,
            )
            stream = await self._open_stream(options, found.session_id, caller, found.point)
            try:
                session = await self._sessions.restore(
                    found,
                    resume.resume_token,
                    stream,
                    last_sequence=resume.last_sequence,
                    audio_offset_s=offset_s,
                    sample_rate_hz=options.sample_rate_hz,
                    frame_bytes=2 * options.channels,
                )
            except BaseException:
                await self._close_stream(stream)
                raise
        session_id_var.set(session.session_id)
        self.metrics.resumes.labels("held" if session is found else "rebuilt").inc()
        logger.info(
            "session resumed after response %d from audio %.3f s%s, peer %s",
            resume.last_sequence,
            offset_s,
            "" if session is found else f", rebuilt here from {found.point.offset_s:.3f} s",
            peer,
        )
        return session

    def _options(self, streaming: speech_pb2.StreamingRecognitionConfig) -> config.StreamOptions:
        if not streaming.HasField("config"):
            raise InvalidRequestError("streaming_config.config is required")
        return config.parse(
            streaming.config,
            streaming.voice_activity,
            self._settings,
            interim_results=streaming.interim_results,
            single_utterance=streaming.single_utterance,
            speech_events=streaming.enable_speech_events,
            translate_interim=streaming.translate_interim_results,
            caption_room=streaming.caption_room,
            speaker_label=streaming.speaker_label,
        )

    async def _open_stream(
        self,
        options: config.StreamOptions,
        session_id: str,
        caller: Identity,
        start: StreamPosition = STREAM_START,
    ) -> RecognitionStream:
        room: RoomPublisher | None = None
        if options.caption_room:
            _check_room_access(caller, options.caption_room)
            room = self.rooms.publisher(
                options.caption_room,
                speech_pb2.Speaker(id=session_id, label=options.speaker_label or caller.subject),
            )
        try:
            stream = await self._open(options, session_id, room=room, start=start)
        except BaseException:
            if room is not None:
                await room.close(0)
            raise
        self._streams.add(stream)
        return stream

    async def _close_stream(self, stream: RecognitionStream) -> None:
        self._streams.discard(stream)
        if stream.room is not None:
            await stream.room.close(0)

    def _session_ended(self, session: Session) -> None:
        self._streams.discard(session.stream)
        logger.info("session %s ended", session.session_id)
        room = session.stream.room
        if room is not None:
            task = asyncio.create_task(room.close(self._settings.stt_timeout_s))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def StreamingRecognize(
        self,
        request_iterator: AsyncIterator[speech_pb2.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[speech_pb2.StreamingRecognizeResponse]:
        session_id = uuid.uuid4().hex
        session_id_var.set(session_id)
        try:
            async for response in self.recognize_stream(
                aiter(request_iterator),
                session_id=session_id,
                peer=context.peer(),
                transport="grpc",
                caller=self._authenticator.identify(context.invocation_metadata(), RECOGNIZE),
            ):
                yield response
        except GatewayError as error:
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
            if not request.HasField("config"):
                raise InvalidRequestError("config is required")
            options = config.parse(request.config, request.voice_activity, self._settings)
            stream = await self._open(options, session_id, live=False)
            chunks = _chunks(request.audio_content, options)
            results = [
                response.result
                async for response in stream.run(chunks)
                if response.HasField("result")
            ]
            if stream.ended_by is not None:
                raise stream.ended_by
        except GatewayError as error:
            await context.abort(error.code, str(error))
        except Exception:
            logger.exception("recognize failed on an unexpected error")
            await context.abort(grpc.StatusCode.INTERNAL, internal_error(session_id))
        return speech_pb2.RecognizeResponse(
            results=results,
            session_id=session_id,
            total_billed_duration=duration(stream.audio_seconds),
        )

    async def StreamCaptions(
        self, request: speech_pb2.StreamCaptionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[speech_pb2.StreamCaptionsResponse]:
        try:
            options = config.parse_captions(request)
            _check_room_access(
                self._authenticator.identify(context.invocation_metadata(), CAPTIONS),
                options.room,
            )
            logger.info(
                "listener joined room %s in %s from %s",
                options.room,
                options.language or "the spoken languages",
                context.peer(),
            )
            self.metrics.caption_listeners.inc()
            try:
                async for caption in self.rooms.listen(
                    options.room,
                    language=options.language,
                    interim_results=options.interim_results,
                    resume_after=options.resume_after,
                ):
                    yield caption
            finally:
                self.metrics.caption_listeners.dec()
        except GatewayError as error:
            logger.info("listener refused: %s: %s", error.code.name, error)
            await context.abort(error.code, str(error))
        except Exception:
            logger.exception("listener failed on an unexpected error")
            await context.abort(
                grpc.StatusCode.INTERNAL,
                "internal error of this listener; it is logged, please report it",
            )


def _check_room_access(caller: Identity, room: str) -> None:
    if not caller.may_enter(room):
        raise PermissionDeniedError(
            f"this token is not scoped to caption room {room!r}; ask for a token whose "
            "'rooms' include it"
        )


def internal_error(session_id: str) -> str:
    """What a client is told of a bug: where to find it, not what it was."""
    return f"internal error in session {session_id}; it is logged, please report it"


async def _chunks(
    audio: bytes, options: config.StreamOptions
) -> AsyncIterator[speech_pb2.StreamingRecognizeRequest]:
    """Feeds a whole recording to the streaming pipeline one second at a time."""
    step = (
        2 * options.channels * options.sample_rate_hz
        if options.encoding == "LINEAR16"
        else 64 * 1024
    )
    for start in range(0, len(audio), step):
        yield speech_pb2.StreamingRecognizeRequest(audio_content=audio[start : start + step])
