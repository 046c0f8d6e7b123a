"""Gateway, STT and translation services in one process, still talking gRPC over loopback.

The laptop default runs the exact code path of a cluster: the gateway reaches the other
services through channels, so nothing behaves differently when they are split apart.
"""

import logging
from collections.abc import Awaitable, Callable

from dragoman.serving import run_until_signal
from server.app import GatewayApp
from server.settings import GatewaySettings
from stt.app import SttApp
from stt.settings import SttSettings
from translate.app import TranslateApp
from translate.settings import TranslateSettings

logger = logging.getLogger(__name__)


class EmbeddedStack:
    """Starts STT and translation first, then the gateway pointed at them; stops in the
    reverse order."""

    def __init__(
        self, gateway: GatewaySettings, stt: SttSettings, translate: TranslateSettings
    ) -> None:
        self.gateway_settings = gateway
        self.stt_settings = stt
        self.translate_settings = translate
        self.stt: SttApp | None = None
        self.translate: TranslateApp | None = None
        self.gateway: GatewayApp | None = None

    async def start(self) -> str:
        """Returns the gateway's address once both services are SERVING.

        The apps are built here, on the running loop, because a grpc.aio server belongs to
        the loop it was created on.
        """
        self.stt = SttApp(self.stt_settings)
        self.translate = TranslateApp(self.translate_settings)
        await self.stt.start()
        await self.translate.start()
        await self.stt.wait_ready()
        await self.translate.wait_ready()
        settings = self.gateway_settings.model_copy(
            update={"stt_target": self.stt.address, "translate_target": self.translate.address}
        )
        self.gateway = GatewayApp(settings)
        await self.gateway.start()
        return self.gateway.address

    def with_stt_model(self, model: str) -> "EmbeddedStack":
        """A stack like this one (not started) whose STT service serves `model`."""
        stt = self.stt_settings.model_copy(update={"model": model})
        return EmbeddedStack(self.gateway_settings, stt, self.translate_settings)

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.translate is not None:
            await self.translate.stop()
        if self.stt is not None:
            await self.stt.stop()


async def run(stack: EmbeddedStack, then: Callable[[str], Awaitable[None]] | None = None) -> None:
    """Serves until SIGINT or SIGTERM; `then` runs once with the gateway's address."""
    try:
        address = await stack.start()
    except BaseException:
        await stack.stop()
        raise
    logger.info("Dragoman is serving on %s", address)
    if then is not None:
        await then(address)
    await run_until_signal(stack.stop)
