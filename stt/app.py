"""One STT replica: the gRPC server, its models and its scheduler, started and stopped together."""

import asyncio
import logging
from collections.abc import Callable

import grpc

from dragoman.api.stt.v1 import stt_pb2_grpc
from dragoman.interfaces import STT_SERVICE_NAME
from dragoman.loading import LoadStates
from dragoman.metrics import WorkMetrics
from dragoman.serving import Replica, ServiceHost, serve_replica
from dragoman.stt import models
from dragoman.stt.engine import WhisperEngine
from dragoman.stt.models import ModelError
from dragoman.stt.scheduler import Scheduler
from dragoman.stt.service import SttServicer
from dragoman.stt.settings import SttSettings

logger = logging.getLogger(__name__)


def load_engine(name: str, settings: SttSettings) -> WhisperEngine:
    """Prepares and loads one model; blocking (may download), raises ModelError."""
    prepared = models.prepare(name, settings.model_cache_dir)
    return WhisperEngine(
        prepared,
        device=settings.device,
        compute_type=settings.compute_type,
        cpu_threads=settings.cpu_threads,
        windows=settings.windows,
    )


class SttApp(Replica):
    service_name = STT_SERVICE_NAME
    description = "STT service"
    telemetry_name = "stt"

    def __init__(
        self,
        settings: SttSettings,
        *,
        load: Callable[[str, SttSettings], WhisperEngine] = load_engine,
    ) -> None:
        """`load` loads a model by name (another one wraps or replaces an engine)."""
        super().__init__(settings)
        self.settings: SttSettings = settings
        self._load_engine = load
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
        self.load_states = LoadStates(settings.model_names, self.work_metrics)
        self.servicer = SttServicer(
            self.scheduler,
            default_model=settings.model,
            models=self.load_states,
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
                engine = await asyncio.to_thread(self._load_engine, name, self.settings)
            except ModelError as error:
                self.load_states.failed(name, error)
                if is_default:
                    ready.set_exception(error)
                continue
            self.scheduler.add_engine(engine)
            self.load_states.ready(name)
            if is_default:
                await host.set_serving()
                ready.set_result(None)
                logger.info("serving; default model %s", name)


async def serve(settings: SttSettings) -> None:
    """Runs one replica until SIGINT or SIGTERM, then drains it."""
    await serve_replica(SttApp(settings))
