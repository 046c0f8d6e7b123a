"""One translation replica: the gRPC server, its backends and its batcher, started and
stopped together.

The port is bound before the backends load, so that probes see a live NOT_SERVING replica
instead of a refused connection while weights are verified and loaded.
"""

import asyncio
import logging

from dragoman.serving import ServiceHost, run_until_signal
from dragoman.translate.v1 import translate_pb2_grpc
from translate.backends import BackendError, load_backend
from translate.batcher import Batcher
from translate.service import SERVICE_NAME, TranslateServicer
from translate.settings import TranslateSettings

logger = logging.getLogger(__name__)


class TranslateApp:
    def __init__(self, settings: TranslateSettings) -> None:
        self.settings = settings
        self.batcher = Batcher(
            max_batch_size=settings.max_batch_size,
            batch_window_ms=settings.batch_window_ms,
            max_queue=settings.max_queue,
        )
        self.servicer = TranslateServicer(
            self.batcher,
            backend_names=settings.backend_names,
            max_texts=settings.max_texts,
            max_text_chars=settings.max_text_chars,
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
        """Binds (port 0 picks a free one), starts loading the backends and returns the port.

        The gRPC server is built here because it belongs to the running event loop.
        """
        self._host = ServiceHost([SERVICE_NAME], max_message_bytes=self.settings.max_message_bytes)
        translate_pb2_grpc.add_TranslateServiceServicer_to_server(self.servicer, self._host.server)
        port = await self._host.start(self.settings.host, self.settings.port)
        logger.info("translation service listening on %s", self.address)
        self._ready = asyncio.get_running_loop().create_future()
        self._loading = asyncio.create_task(
            self._load_backends(self._host, self._ready), name="translate-load"
        )
        return port

    async def wait_ready(self) -> None:
        """Returns once every backend serves; raises the first load error otherwise."""
        if self._ready is None:
            raise RuntimeError("TranslateApp.start() was not called")
        await asyncio.shield(self._ready)

    async def stop(self) -> None:
        """Drains calls in flight within the grace period, then frees the backend threads."""
        if self._host is not None:
            await self._host.stop(self.settings.drain_grace_s)
        if self._loading is not None:
            self._loading.cancel()
        await self.batcher.close()
        logger.info("translation service stopped")

    async def _load_backends(self, host: ServiceHost, ready: asyncio.Future[None]) -> None:
        """Loads the backends in order, each serving as soon as it loads; health turns
        SERVING only when all have, so a misconfigured replica stays out of rotation."""
        failure: BackendError | None = None
        for name in self.settings.backend_names:
            try:
                backend = await asyncio.to_thread(load_backend, name, self.settings)
            except BackendError as error:
                logger.error("backend %s failed to load: %s", name, error)
                self.servicer.mark_failed(name, str(error))
                failure = failure or error
                continue
            self.batcher.add_backend(backend)
            logger.info("backend %s serving %d pairs", name, len(backend.pairs()))
        if failure is not None:
            ready.set_exception(failure)
            return
        await host.set_serving()
        ready.set_result(None)
        logger.info("serving; backends %s", ", ".join(self.settings.backend_names))


async def serve(settings: TranslateSettings) -> None:
    """Runs one replica until SIGINT or SIGTERM, then drains it."""
    app = TranslateApp(settings)
    await app.start()
    await run_until_signal(app.stop)
