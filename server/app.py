"""The gateway process: the public SpeechService in front of the STT service."""

import asyncio
import logging

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.auth import Authenticator
from dragoman.errors import StatusError
from dragoman.gateway.bridge import WebSocketBridge
from dragoman.gateway.hallucination import HallucinationOptions
from dragoman.gateway.metrics import GatewayMetrics
from dragoman.gateway.room_store import MemoryRoomStore, RoomStore
from dragoman.gateway.room_store_redis import RedisRoomStore
from dragoman.gateway.rooms import CaptionRooms
from dragoman.gateway.service import SpeechServicer
from dragoman.gateway.session_manager import SessionManager
from dragoman.gateway.session_store import RedisSessionStore
from dragoman.gateway.sessions import SessionRegistry
from dragoman.gateway.settings import GatewaySettings
from dragoman.gateway.stream import StreamTuning
from dragoman.gateway.stt_client import ModelCatalog, SttClient
from dragoman.gateway.translate_client import TranslateClient
from dragoman.gateway.translation import Translator
from dragoman.gateway.vad import SileroModel
from dragoman.gateway.web import WebServer
from dragoman.metrics import Metrics
from dragoman.serving import ServiceHost, run_until_signal
from dragoman.tracing import Tracing

logger = logging.getLogger(__name__)

STT_POLL_S = 0.5
SERVICE_NAME = speech_pb2.DESCRIPTOR.services_by_name["SpeechService"].full_name


class GatewayApp:
    """Owns the gateway's server, its STT channel and the shared VAD model."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        tracing = Tracing("dragoman-gateway")
        self.metrics = Metrics("gateway")
        authenticator = Authenticator(settings.auth)
        limits = settings.limits
        self.host = ServiceHost(
            [SERVICE_NAME],
            max_message_bytes=limits.max_message_bytes,
            tracing=tracing,
            metrics=self.metrics,
            tls=settings.tls,
            authenticator=authenticator,
            stream_window_bytes=limits.stream_window_bytes,
        )
        backends = settings.backends
        channel = {
            "max_message_bytes": limits.max_message_bytes,
            "interceptors": tracing.client_interceptors(),
            "credentials": backends.credentials(),
        }
        self.stt = SttClient(backends.stt_target, timeout_s=backends.stt_timeout_s, **channel)
        self.translate = (
            TranslateClient(
                backends.translate_target, timeout_s=backends.translate_timeout_s, **channel
            )
            if backends.translate_target
            else None
        )
        translator = Translator(self.translate)
        gateway_metrics = GatewayMetrics(self.metrics)
        self.rooms = CaptionRooms(
            room_store(settings),
            translator,
            gateway_metrics,
            settings.rooms,
        )
        self.sessions = SessionManager(
            settings,
            self.stt,
            translator,
            SileroModel(),
            StreamTuning(limits, settings.interims, settings.finals, HallucinationOptions()),
            self.rooms,
            tracing.tracer,
            gateway_metrics,
            SessionRegistry(settings.resume, session_store(settings)),
        )
        speech_pb2_grpc.add_SpeechServiceServicer_to_server(
            SpeechServicer(self.sessions, authenticator), self.host.server
        )
        self.web = WebServer(
            WebSocketBridge(
                self.sessions,
                max_message_bytes=limits.max_message_bytes,
                tracer=tracing.tracer,
                authenticator=authenticator,
            ),
            settings.web_root,
            drain_grace_s=settings.drain_grace_s,
        )

    @property
    def address(self) -> str:
        """The gRPC address."""
        return f"{self.settings.host}:{self.host.port}"

    @property
    def http_address(self) -> str:
        """The address of the WebSocket bridge and the page."""
        return f"{self.settings.host}:{self.web.port}"

    async def start(self) -> int:
        """Binds, then turns SERVING once the STT service has a model loaded; returns the port.

        Until then health says NOT_SERVING, so a gateway started before its STT replicas
        simply waits for them.
        """
        loop = asyncio.get_running_loop()
        self.sessions.metrics.tasks.set_function(lambda: len(asyncio.all_tasks(loop)))
        port = await self.host.start(
            self.settings.host, self.settings.port, self.settings.metrics_port
        )
        await self.web.start(self.settings.host, self.settings.http_port)
        self.stt.connect()
        if self.translate is not None:
            self.translate.connect()
        self.sessions.start()
        catalog = await self._wait_for_stt()
        logger.info(
            "gateway listening on %s:%d (gRPC) and %s (WebSocket, page), STT at %s serving %s, "
            "caption rooms in %s",
            self.settings.host,
            port,
            self.http_address,
            self.settings.backends.stt_target,
            ", ".join(sorted(catalog.models)),
            "Redis" if self.settings.redis.redis_url else "memory",
        )
        await self.host.set_serving()
        return port

    async def _wait_for_stt(self) -> ModelCatalog:
        waited_s = 0.0
        while True:
            try:
                catalog = await self.stt.catalog()
            except StatusError as error:
                catalog, reason = None, str(error)
            else:
                reason = "no model loaded yet"
            if catalog is not None and catalog.default:
                return catalog
            if waited_s % 10 == 0:
                logger.info("waiting for the STT service at %s: %s", self.stt.target, reason)
            await asyncio.sleep(STT_POLL_S)
            waited_s += STT_POLL_S

    async def stop(self) -> None:
        """Drains: NOT_SERVING at once. With a session store, every session is handed over
        to be resumed on another gateway; other streams end after their current
        utterance's final result; whatever is left when the grace period is over is
        cancelled."""
        self.sessions.drain(self.settings.drain_grace_s)
        await self.sessions.hand_over()
        await asyncio.gather(self.host.stop(self.settings.drain_grace_s), self.web.stop())
        await self.sessions.close()
        await self.rooms.close()
        await self.stt.close()
        if self.translate is not None:
            await self.translate.close()


def room_store(settings: GatewaySettings) -> RoomStore:
    """Redis when a URL is set, so rooms span gateways; this process's memory otherwise."""
    rooms, redis = settings.rooms, settings.redis
    if redis.redis_url:
        return RedisRoomStore(
            redis.redis_url,
            history=rooms.caption_history,
            ttl_s=rooms.caption_room_ttl_s,
            timeout_s=redis.redis_timeout_s,
            translate_timeout_s=settings.backends.translate_timeout_s,
        )
    return MemoryRoomStore(history=rooms.caption_history, ttl_s=rooms.caption_room_ttl_s)


def session_store(settings: GatewaySettings) -> RedisSessionStore | None:
    """Redis when a URL is set and streams resume, so a session moves between gateways."""
    resume, redis = settings.resume, settings.redis
    if not (redis.redis_url and resume.resume_grace_s > 0):
        return None
    return RedisSessionStore(
        redis.redis_url,
        grace_s=resume.resume_grace_s,
        max_responses=resume.resume_max_responses,
        timeout_s=redis.redis_timeout_s,
    )


async def serve(settings: GatewaySettings) -> None:
    app = GatewayApp(settings)
    await app.start()
    await run_until_signal(app.stop)
