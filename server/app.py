"""The gateway process: the public SpeechService in front of the STT service."""

import logging

from dragoman.serving import ServiceHost, run_until_signal
from dragoman.speech.v1 import speech_pb2, speech_pb2_grpc
from server.hallucination import HallucinationOptions
from server.service import SpeechServicer
from server.settings import GatewaySettings
from server.stream import StreamTuning
from server.stt_client import SttClient
from server.vad import SileroModel

logger = logging.getLogger(__name__)

SERVICE_NAME = speech_pb2.DESCRIPTOR.services_by_name["SpeechService"].full_name


class GatewayApp:
    """Owns the gateway's server, its STT channel and the shared VAD model."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.host = ServiceHost([SERVICE_NAME], max_message_bytes=settings.max_message_bytes)
        self.stt = SttClient(
            settings.stt_target,
            timeout_s=settings.stt_timeout_s,
            max_message_bytes=settings.max_message_bytes,
        )
        tuning = StreamTuning(
            max_chunk_bytes=settings.max_chunk_bytes,
            interim_interval_s=settings.interim_interval_s,
            condition_on_previous=settings.condition_on_previous,
            hallucination=HallucinationOptions(),
        )
        self.servicer = SpeechServicer(settings, self.stt, SileroModel(), tuning)

        speech_pb2_grpc.add_SpeechServiceServicer_to_server(self.servicer, self.host.server)

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.host.port}"

    async def start(self) -> int:
        """Serves once the STT service answers with its models; returns the bound port."""
        port = await self.host.start(self.settings.host, self.settings.port)
        catalog = await self.stt.catalog()
        logger.info(
            "gateway listening on %s:%d, STT at %s serving %s",
            self.settings.host,
            port,
            self.settings.stt_target,
            ", ".join(sorted(catalog.models)),
        )
        await self.host.set_serving()
        return port

    async def stop(self) -> None:
        await self.host.stop(self.settings.drain_grace_s)
        await self.stt.close()


async def serve(settings: GatewaySettings) -> None:
    app = GatewayApp(settings)
    await app.start()
    await run_until_signal(app.stop)
