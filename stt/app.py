"""One STT replica: the gRPC server, its models and its scheduler, started and stopped together.

The port is bound before the models load, so that probes see a live NOT_SERVING replica
instead of a refused connection while weights are checked and loaded (seconds on CPU).
"""

import asyncio
import logging

from dragoman.serving import ServiceHost, run_until_signal
from dragoman.stt.v1 import stt_pb2_grpc
from stt import models
from stt.engine import WhisperEngine
from stt.models import ModelError
from stt.scheduler import Scheduler
from stt.service import SERVICE_NAME, SttServicer
from stt.settings import SttSettings

logger = logging.getLogger(__name__)


class SttApp:
    def __init__(self, settings: SttSettings) -> None:
        self.settings = settings
        self.scheduler = Scheduler(max_queue=settings.max_queue)
        self.servicer = SttServicer(
            self.scheduler,
            default_model=settings.model,
            served_models=settings.model_names,
            final_beam_size=settings.final_beam_size,
            interim_beam_size=settings.interim_beam_size,
        )
        self._host: ServiceHost | None = None
        self._loading: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None

    @property
    def address(self) -> str:
        """Where the replica listens, once started."""
        port = self._host.port if self._host is not None else self.settings.port
        return f"{self.settings.host}:{port}"

    async def start(self) -> int:
        """Binds (port 0 picks a free one), starts loading the models and returns the port.

        Model names are checked first, so a typo fails here rather than in the background.
        The gRPC server is built here because it belongs to the running event loop.
        """
        for name in self.settings.model_names:
            models.resolve(name)
        self._host = ServiceHost([SERVICE_NAME], max_message_bytes=self.settings.max_message_bytes)
        stt_pb2_grpc.add_SttServiceServicer_to_server(self.servicer, self._host.server)
        port = await self._host.start(self.settings.host, self.settings.port)
        logger.info("STT service listening on %s", self.address)
        self._ready = asyncio.get_running_loop().create_future()
        self._loading = asyncio.create_task(
            self._load_models(self._host, self._ready), name="stt-load"
        )
        return port

    async def wait_ready(self) -> None:
        """Returns once the default model serves; raises the error if it failed to load."""
        if self._ready is None:
            raise RuntimeError("SttApp.start() was not called")
        await asyncio.shield(self._ready)

    async def stop(self) -> None:
        """Drains calls in flight within the grace period, then frees the model threads."""
        if self._host is not None:
            await self._host.stop(self.settings.drain_grace_s)
        if self._loading is not None:
            self._loading.cancel()
        await self.scheduler.close()
        logger.info("STT service stopped")

    async def _load_models(self, host: ServiceHost, ready: asyncio.Future[None]) -> None:
        """Loads the default model, turns health SERVING, then loads the preloaded ones."""
        for name in self.settings.model_names:
            is_default = name == self.settings.model
            try:
                engine = await asyncio.to_thread(self._load_engine, name)
            except ModelError as error:
                logger.error("model %s failed to load: %s", name, error)
                self.servicer.mark_failed(name, str(error))
                if is_default:
                    ready.set_exception(error)
                continue
            self.scheduler.add_engine(engine)
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
        )


async def serve(settings: SttSettings) -> None:
    """Runs one replica until SIGINT or SIGTERM, then drains it."""
    app = SttApp(settings)
    await app.start()
    await run_until_signal(app.stop)
