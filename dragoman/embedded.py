"""Gateway and STT service in one process, still talking gRPC over loopback.

The laptop default runs the exact code path of a cluster: the gateway reaches the STT
service through a channel, so nothing behaves differently when they are split apart.
"""

import logging
from collections.abc import Awaitable, Callable

from dragoman.serving import run_until_signal
from server.app import GatewayApp
from server.settings import GatewaySettings
from stt.app import SttApp
from stt.settings import SttSettings

logger = logging.getLogger(__name__)


class EmbeddedStack:
    """Starts STT first, then the gateway pointed at it; stops in the reverse order."""

    def __init__(self, gateway: GatewaySettings, stt: SttSettings) -> None:
        self._gateway_settings = gateway
        self._stt_settings = stt
        self.stt: SttApp | None = None
        self.gateway: GatewayApp | None = None

    async def start(self) -> str:
        """Returns the gateway's address once both services are SERVING.

        The apps are built here, on the running loop, because a grpc.aio server belongs to
        the loop it was created on.
        """
        self.stt = SttApp(self._stt_settings)
        await self.stt.start()
        await self.stt.wait_ready()
        settings = self._gateway_settings.model_copy(update={"stt_target": self.stt.address})
        self.gateway = GatewayApp(settings)
        await self.gateway.start()
        return self.gateway.address

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.stt is not None:
            await self.stt.stop()


async def run(
    gateway: GatewaySettings,
    stt: SttSettings,
    then: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """Serves until SIGINT or SIGTERM; `then` runs once with the gateway's address."""
    stack = EmbeddedStack(gateway, stt)
    try:
        address = await stack.start()
    except BaseException:
        await stack.stop()
        raise
    logger.info("Dragoman is serving on %s", address)
    if then is not None:
        await then(address)
    await run_until_signal(stack.stop)
