"""One STT replica: the gRPC server, its models and its scheduler, started and stopped together."""

import asyncio
import logging

import grpc
from dragoman.stt import models
from dragoman.stt.engine import WhisperEngine
from dragoman.stt.models import ModelError
from dragoman.stt.scheduler import Scheduler
from dragoman.stt.service import SERVICE_NAME, SttServicer
from dragoman.stt.settings import SttSettings

from dragoman.api.stt.v1 import stt_pb2_grpc
from dragoman.metrics import WorkMetrics
from dragoman.serving import Replica, ServiceHost, serve_replica

logger = logging.getLogger(__name__)


class SttApp(Replica):
    service_name = SERVICE_NAME
    description = "STT service"
    telemetry_name = "stt"

    def __init__(self, settings: SttSettings) -> None:
        super().__init__(settings)
        self.settings: SttSettings = settings
        self.work_metrics = WorkMetrics(self.metrics, "model")
        self.scheduler = Scheduler(
            max_queue=settings.max_queue,
            max_batch_size=settings.max_batch_size,
            batch_wait_s=settings.batch_wait_ms / 1000,
            on_discarded=lambda model, seconds: self.work_metrics.discarded_run.labels(model).inc(
                seconds
            ),
        )
        self.work_metrics.queue_depth.set_function(lambda: self.scheduler.queued)
        for name in settings.model_names:
            self.work_metrics.set_state(name, "loading")
        self.servicer = SttServicer(
            self.scheduler,
            default_model=settings.model,
            served_models=settings.model_names,
            final_beam_size=settings.final_beam_size,
            interim_beam_size=settings.interim_beam_size,
            metrics=self.work_metrics,
            tracer=self.tracing.tracer,
        )

    def _check(self) -> None:
        """Model names are checked first, so a typo fails here, not in the background."""
        for name in self.settings.model_names:
            models.resolve(name)

    def _register(self, server: grpc.aio.Server) -> None:
        stt_pb2_grpc.add_SttServiceServicer_to_server(self.servicer, server)

    async def _close(self) -> None:
        await self.scheduler.close()

    async def _load(self, host: ServiceHost, ready: asyncio.Future[None]) -> None:
        """Loads the default model, turns health SERVING, then loads the preloaded ones."""
        for name in self.settings.model_names:
            is_default = name == self.settings.model
            try:
                engine = await asyncio.to_thread(self._load_engine, name)
            except ModelError as error:
                logger.error("model %s failed to load: %s", name, error)
                self.servicer.mark_failed(name, str(error))
                self.work_metrics.set_state(name, "failed")
                if is_default:
                    ready.set_exception(error)
                continue
            self.scheduler.add_engine(engine)
            self.work_metrics.set_state(name, "ready")
            if is_default:
                await host.set_serving()
                ready.set_result(None)
                logger.info("serving; default model %s", name)

    def _load_engine(self, name: str) -> WhisperEngine:
        prepared = models.prepare(name, self.settings.model_cache_dir)
        return WhisperEngine(
            prepared,
            device=self.settings.device,
            compute_type=self.settings.compute_type,
            cpu_threads=self.settings.cpu_threads,
            windows=self.settings.windows,
        )


async def serve(settings: SttSettings) -> None:
    """Runs one replica until SIGINT or SIGTERM, then drains it."""
    await serve_replica(SttApp(settings))
