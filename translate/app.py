"""One translation replica: the gRPC server, its backends and its batcher, started and
stopped together."""

import asyncio
import logging
from collections.abc import Callable

import grpc

from dragoman.api.translate.v1 import translate_pb2_grpc
from dragoman.interfaces import TRANSLATE_SERVICE_NAME
from dragoman.loading import LoadStates
from dragoman.metrics import WorkMetrics
from dragoman.serving import Replica, ServiceHost, serve_replica
from dragoman.translate.backends import BackendError, TranslationBackend, load_backend
from dragoman.translate.batcher import Batcher
from dragoman.translate.service import TranslateServicer
from dragoman.translate.settings import TranslateSettings

logger = logging.getLogger(__name__)


class TranslateApp(Replica):
    service_name = TRANSLATE_SERVICE_NAME
    description = "translation service"
    telemetry_name = "translate"

    def __init__(
        self,
        settings: TranslateSettings,
        *,
        load: Callable[[str, TranslateSettings], TranslationBackend] = load_backend,
    ) -> None:
        """`load` loads a backend by name (another one wraps or replaces an engine)."""
        super().__init__(settings)
        self.settings: TranslateSettings = settings
        self._load_backend = load
        self.batcher = Batcher(
            max_batch_size=settings.max_batch_size,
            batch_window_ms=settings.batch_window_ms,
            max_queue=settings.max_queue,
        )
        self.work_metrics = WorkMetrics(self.metrics, "backend")
        self.work_metrics.queue_depth.set_function(lambda: self.batcher.queued)
        self.load_states = LoadStates(settings.backend_names, self.work_metrics)
        self.servicer = TranslateServicer(
            self.batcher,
            backends=self.load_states,
            max_texts=settings.max_texts,
            max_text_chars=settings.max_text_chars,
            metrics=self.work_metrics,
            tracer=self.tracing.tracer,
        )

    def _register(self, server: grpc.aio.Server) -> None:
        translate_pb2_grpc.add_TranslateServiceServicer_to_server(self.servicer, server)

    async def _close(self) -> None:
        await self.batcher.close()

    async def _load(self, host: ServiceHost, ready: asyncio.Future[None]) -> None:
        """Loads the backends in order, each serving as soon as it loads; health turns
        SERVING only when all have, so a misconfigured replica stays out of rotation."""
        failure: BackendError | None = None
        for name in self.settings.backend_names:
            try:
                backend = await asyncio.to_thread(self._load_backend, name, self.settings)
            except BackendError as error:
                self.load_states.failed(name, error)
                failure = failure or error
                continue
            self.batcher.add_backend(backend)
            self.load_states.ready(name)
            logger.info("backend %s serving %d pairs", name, len(backend.pairs()))
        if failure is not None:
            ready.set_exception(failure)
            return
        await host.set_serving()
        ready.set_result(None)
        logger.info("serving; backends %s", ", ".join(self.settings.backend_names))


async def serve(settings: TranslateSettings) -> None:
    """Runs one replica until SIGINT or SIGTERM, then drains it."""
    await serve_replica(TranslateApp(settings))
