"""The gateway process: the public SpeechService in front of the STT service."""

import asyncio
import logging

from dragoman.gateway.bridge import WebSocketBridge
from dragoman.gateway.errors import GatewayError
from dragoman.gateway.hallucination import HallucinationOptions
from dragoman.gateway.limits import StreamLimits
from dragoman.gateway.metrics import GatewayMetrics
from dragoman.gateway.room_store import MemoryRoomStore, RoomStore
from dragoman.gateway.room_store_redis import RedisRoomStore
from dragoman.gateway.rooms import CaptionRooms
from dragoman.gateway.service import SpeechServicer
from dragoman.gateway.session_store import RedisSessionStore
from dragoman.gateway.sessions import ResumePolicy, SessionRegistry
from dragoman.gateway.settings import GatewaySettings
from dragoman.gateway.stream import StreamTuning
from dragoman.gateway.stt_client import ModelCatalog, SttClient
from dragoman.gateway.translate_client import TranslateClient
from dragoman.gateway.translation import Translator
from dragoman.gateway.vad import SileroModel
from dragoman.gateway.web import WebServer

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.auth import Authenticator
from dragoman.metrics import Metrics
from dragoman.serving import ServiceHost, run_until_signal
from dragoman.tls import channel_credentials
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
        authenticator = Authenticator(
            tokens_file=settings.auth_tokens_file,
            jwt_hs256_secret_file=settings.auth_jwt_hs256_secret_file,
            jwt_rs256_public_key_file=settings.auth_jwt_rs256_public_key_file,
            jwt_audience=settings.auth_jwt_audience,
            jwt_issuer=settings.auth_jwt_issuer,
        )
        self.host = ServiceHost(
            [SERVICE_NAME],
            max_message_bytes=settings.max_message_bytes,
            tracing=tracing,
            metrics=self.metrics,
            tls=settings,
            authenticator=authenticator,
            stream_window_bytes=settings.stream_window_bytes,
        )
        backend = {
            "timeout_s": settings.stt_timeout_s,
            "max_message_bytes": settings.max_message_bytes,
            "interceptors": tracing.client_interceptors(),
            "credentials": channel_credentials(
                settings.backend_tls_ca_file,
                settings.backend_tls_cert_file,
                settings.backend_tls_key_file,
            ),
        }
        self.stt = SttClient(settings.stt_target, **backend)
        self.translate = (
            TranslateClient(settings.translate_target, **backend)
            if settings.translate_target
            else None
        )
        tuning = StreamTuning(
            max_chunk_bytes=settings.max_chunk_bytes,
            interim_interval_s=settings.interim_interval_s,
            first_interim_s=settings.first_interim_s,
            interim_duty_cycle=settings.interim_duty_cycle,
            condition_on_previous=settings.condition_on_previous,
            hallucination=HallucinationOptions(),
            final_persist_s=settings.final_persist_s,
            limits=StreamLimits(
                max_stream_s=settings.max_stream_s,
                idle_timeout_s=settings.idle_timeout_s,
                max_speedup=settings.max_speedup,
                speedup_burst_s=settings.speedup_burst_s,
            ),
        )
        translator = Translator(self.translate)
        gateway_metrics = GatewayMetrics(self.metrics)
        self.rooms = CaptionRooms(
            room_store(settings),
            translator,
            gateway_metrics,
            backlog=settings.caption_backlog,
            listener_queue=settings.caption_listener_queue,
            language_ttl_s=settings.caption_language_ttl_s,
        )
        self.sessions = SessionRegistry(
            ResumePolicy(
                grace_s=settings.resume_grace_s,
                max_responses=settings.resume_max_responses,
                check_s=settings.resume_check_s,
                max_resumes=settings.resume_max_per_minute,
            ),
            RedisSessionStore(
                settings.redis_url,
                grace_s=settings.resume_grace_s,
                max_responses=settings.resume_max_responses,
                timeout_s=settings.redis_timeout_s,
            )
            if settings.redis_url and settings.resume_grace_s > 0
            else None,
        )
        self.servicer = SpeechServicer(
            settings,
            self.stt,
            translator,
            SileroModel(),
            tuning,
            self.rooms,
            tracing.tracer,
            gateway_metrics,
            authenticator,
            self.sessions,
        )
        speech_pb2_grpc.add_SpeechServiceServicer_to_server(self.servicer, self.host.server)
        self.web = WebServer(
            WebSocketBridge(
                self.servicer,
                max_message_bytes=settings.max_message_bytes,
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
        self.servicer.metrics.tasks.set_function(lambda: len(asyncio.all_tasks(loop)))
        port = await self.host.start(
            self.settings.host, self.settings.port, self.settings.metrics_port
        )
        await self.web.start(self.settings.host, self.settings.http_port)
        self.stt.connect()
        if self.translate is not None:
            self.translate.connect()
        if self.sessions.store is not None:
            self.sessions.store.start()
        catalog = await self._wait_for_stt()
        logger.info(
            "gateway listening on %s:%d (gRPC) and %s (WebSocket, page), STT at %s serving %s, "
            "caption rooms in %s",
            self.settings.host,
            port,
            self.http_address,
            self.settings.stt_target,
            ", ".join(sorted(catalog.models)),
            "Redis" if self.settings.redis_url else "memory",
        )
        await self.host.set_serving()
        return port

    async def _wait_for_stt(self) -> ModelCatalog:
        waited_s = 0.0
        while True:
            try:
                catalog = await self.stt.catalog()
            except GatewayError as error:
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
        self.servicer.drain(self.settings.drain_grace_s)
        await self.sessions.hand_over()
        await asyncio.gather(self.host.stop(self.settings.drain_grace_s), self.web.stop())
        await self.sessions.close()
        if self.sessions.store is not None:
            await self.sessions.store.close()
        await self.rooms.close()
        await self.stt.close()
        if self.translate is not None:
            await self.translate.close()


def room_store(settings: GatewaySettings) -> RoomStore:
    """Redis when a URL is set, so rooms span gateways; this process's memory otherwise."""
    if settings.redis_url:
        return RedisRoomStore(
            settings.redis_url,
            history=settings.caption_history,
            ttl_s=settings.caption_room_ttl_s,
            timeout_s=settings.redis_timeout_s,
            translate_timeout_s=settings.stt_timeout_s,
        )
    return MemoryRoomStore(history=settings.caption_history, ttl_s=settings.caption_room_ttl_s)


async def serve(settings: GatewaySettings) -> None:
    app = GatewayApp(settings)
    await app.start()
    await run_until_signal(app.stop)
