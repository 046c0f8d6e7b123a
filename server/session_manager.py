"""The gateway's sessions, whatever transport carries them.

The gRPC servicer and the WebSocket bridge are thin adapters over this one manager: it
admits streams (one count of live connections, the one `max_streams` and the metrics
read), starts and resumes sessions in the registry, drains them, and opens caption rooms
for speakers and listeners. A transport only turns its frames into requests, its caller
into an Identity, and a StatusError into its own status.
"""

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator

from opentelemetry import trace

from dragoman.api.speech.v1 import speech_pb2
from dragoman.auth import Identity
from dragoman.durations import duration, seconds
from dragoman.errors import InvalidRequestError, StatusError
from dragoman.gateway import request_options
from dragoman.gateway.errors import DrainingError, OverloadedError, PermissionDeniedError
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
from dragoman.logs import session_id_var

logger = logging.getLogger(__name__)

TRANSPORTS = ("grpc", "websocket")


class SessionManager:
    """Admission, the session registry, drain and caption rooms, for every transport."""

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
        registry: SessionRegistry,
    ) -> None:
        self._settings = settings
        self._stt = stt
        self._translator = translator
        self._vad_model = vad_model
        self._tuning = tuning
        self.rooms = rooms
        self._tracer = tracer
        self.metrics = metrics
        self.registry = registry
        self.registry.on_end(self._session_ended)
        self._connections: Counter[str] = Counter()
        for transport in TRANSPORTS:
            metrics.active_streams.labels(transport).set_function(
                lambda transport=transport: self._connections[transport]
            )
        self._live: set[Session] = set()
        """Every session whose stream runs, resumable or not: what a drain ends."""
        self._closing: set[asyncio.Task[None]] = set()
        self._drain_cut_s: float | None = None

    def start(self) -> None:
        """Connects the session store, if there is one."""
        if self.registry.store is not None:
            self.registry.store.start()

    async def hand_over(self) -> None:
        """Hands every session over to be resumed on another gateway (with a store)."""
        await self.registry.hand_over()

    async def close(self) -> None:
        """Ends the sessions left, lets their caption rooms close, and disconnects the
        session store."""
        await self.registry.close()
        await asyncio.gather(*self._closing)
        if self.registry.store is not None:
            await self.registry.store.close()

    @property
    def active_streams(self) -> int:
        """Connections streaming now, over every transport: what `max_streams` bounds."""
        return self._connections.total()

    def drain(self, grace_s: float) -> None:
        """Refuses new streams and ends every open one at its next pause; sessions handed
        over to another gateway (`SessionRegistry.hand_over`) are not waited for.

        An utterance in progress may go on for half the grace period; the other half is
        left for its final transcription and translation, so that what was said is
        delivered before the server stops.
        """
        self._drain_cut_s = grace_s / 2
        logger.info("draining %d sessions", len(self._live))
        for session in list(self._live):
            self._drain(session)

    def _drain(self, session: Session) -> None:
        if self._drain_cut_s is None or session.shared:
            return
        session.stream.drain(
            self._drain_cut_s,
            DrainingError(
                "the gateway is shutting down: this stream ended after the final result "
                "of its last utterance; reconnect to continue"
            ),
        )

    async def recognize(
        self,
        requests: AsyncIterator[speech_pb2.StreamingRecognizeRequest],
        *,
        session_id: str,
        peer: str,
        transport: str,
        caller: Identity,
    ) -> AsyncIterator[speech_pb2.StreamingRecognizeResponse]:
        """StreamingRecognize for any transport: raises StatusError for the transport to
        turn into its own status."""
        self._connections[transport] += 1
        self.metrics.streams.labels(transport).inc()
        current = asyncio.current_task()
        if current is not None:
            current.set_name(f"session {session_id}")
        trace.get_current_span().set_attribute("dragoman.session_id", session_id)
        session: Session | None = None
        try:
            most = self._settings.limits.max_streams
            if self.active_streams > most:
                raise OverloadedError(
                    f"this gateway already serves its maximum of {most} streams; retry in a "
                    "few seconds (another replica may have room)"
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
            self._live.add(session)
            self._drain(session)
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
        except StatusError as error:
            self.metrics.stream_errors.labels(transport, error.code.name).inc()
            raise
        finally:
            if isinstance(requests, AsyncGenerator):
                await requests.aclose()  # a stream left early is closed here, not by the GC
            self._connections[transport] -= 1
            logger.info(
                "connection ended after %.2f s of audio",
                session.stream.audio_seconds if session else 0.0,
            )

    async def recognize_file(
        self, request: speech_pb2.RecognizeRequest, session_id: str
    ) -> speech_pb2.RecognizeResponse:
        """Recognize: a whole recording through the same pipeline, read as fast as it goes."""
        if not request.HasField("config"):
            raise InvalidRequestError("config is required")
        options = request_options.parse(request.config, request.voice_activity, self._settings)
        stream = await self._open(options, session_id, live=False)
        results = [
            response.result
            async for response in stream.run(_chunks(request.audio_content, options))
            if response.HasField("result")
        ]
        if stream.ended_by is not None:
            raise stream.ended_by
        return speech_pb2.RecognizeResponse(
            results=results,
            session_id=session_id,
            total_billed_duration=duration(stream.audio_seconds),
        )

    async def listen(
        self, request: speech_pb2.StreamCaptionsRequest, caller: Identity, peer: str
    ) -> AsyncIterator[speech_pb2.StreamCaptionsResponse]:
        """StreamCaptions: a listener's captions of one room."""
        options = request_options.parse_captions(request)
        _check_room_access(caller, options.room)
        logger.info(
            "listener joined room %s in %s from %s",
            options.room,
            options.language or "the spoken languages",
            peer,
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

    async def _open(
        self,
        options: request_options.StreamOptions,
        session_id: str,
        *,
        live: bool = True,
        room: RoomPublisher | None = None,
        start: StreamPosition = STREAM_START,
    ) -> RecognitionStream:
        if self._drain_cut_s is not None:
            raise DrainingError("the gateway is shutting down; retry on another replica")
        model = await self._stt.resolve(options.model, options.language_code)
        await self._translator.check(options.language_code, options.translation_targets, model)
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
        try:
            return await self.registry.start(
                session_id,
                caller.subject,
                stream,
                streaming,
                sample_rate_hz=options.sample_rate_hz,
                frame_bytes=2 * options.channels,
                resumable=options.encoding == "LINEAR16"
                and self._settings.resume.resume_grace_s > 0,
            )
        except BaseException:
            await _close_room(stream.room)
            raise

    async def _resume(
        self, resume: speech_pb2.ResumeSession, caller: Identity, peer: str
    ) -> Session:
        """This gateway's own session, or one rebuilt here from the session store."""
        offset_s = seconds(resume.audio_offset)
        found = await self.registry.find(resume.resume_token, caller.subject)
        if isinstance(found, Session):
            found.check_resume(resume.last_sequence, offset_s)
            await self.registry.claim(found)
            session = found
        else:
            options = dataclasses.replace(
                self._options(found.config),
                language_code=found.spoken,
                translation_targets=found.targets,
            )
            stream = await self._open_stream(options, found.session_id, caller, found.point)
            try:
                session = await self.registry.restore(
                    found,
                    resume.resume_token,
                    stream,
                    last_sequence=resume.last_sequence,
                    audio_offset_s=offset_s,
                    sample_rate_hz=options.sample_rate_hz,
                    frame_bytes=2 * options.channels,
                )
            except BaseException:
                await _close_room(stream.room)
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

    def _options(
        self, streaming: speech_pb2.StreamingRecognitionConfig
    ) -> request_options.StreamOptions:
        if not streaming.HasField("config"):
            raise InvalidRequestError("streaming_config.config is required")
        return request_options.parse(
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
        options: request_options.StreamOptions,
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
            return await self._open(options, session_id, room=room, start=start)
        except BaseException:
            await _close_room(room)
            raise

    def _session_ended(self, session: Session) -> None:
        self._live.discard(session)
        logger.info("session %s ended", session.session_id)
        room = session.stream.room
        if room is not None:
            task = asyncio.create_task(room.close(self._settings.backends.translate_timeout_s))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)


def _check_room_access(caller: Identity, room: str) -> None:
    if not caller.may_enter(room):
        raise PermissionDeniedError(
            f"this token is not scoped to caption room {room!r}; ask for a token whose "
            "'rooms' include it"
        )


async def _close_room(room: RoomPublisher | None) -> None:
    """Closes the room of a stream that never became a session."""
    if room is not None:
        await room.close(0)


async def _chunks(
    audio: bytes, options: request_options.StreamOptions
) -> AsyncIterator[speech_pb2.StreamingRecognizeRequest]:
    """Feeds a whole recording to the streaming pipeline one second at a time."""
    step = (
        2 * options.channels * options.sample_rate_hz
        if options.encoding == "LINEAR16"
        else 64 * 1024
    )
    for start in range(0, len(audio), step):
        yield speech_pb2.StreamingRecognizeRequest(audio_content=audio[start : start + step])
