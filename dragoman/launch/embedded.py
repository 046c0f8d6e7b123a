"""Gateway, STT and translation services in one process, still talking gRPC over loopback.

The laptop default runs the exact code path of a cluster: the gateway reaches the other
services through channels, so nothing behaves differently when they are split apart.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from dragoman.gateway.app import GatewayApp
from dragoman.gateway.settings import GatewaySettings
from dragoman.launch.edge import Edge
from dragoman.launch.stack_settings import EdgeSettings
from dragoman.serving import run_until_signal
from dragoman.settings import updated
from dragoman.stt.app import SttApp
from dragoman.stt.settings import SttSettings
from dragoman.translate.app import TranslateApp
from dragoman.translate.settings import TranslateSettings

logger = logging.getLogger(__name__)


class EmbeddedStack:
    """Starts STT and translation first, then the gateway pointed at them, then Envoy in
    front of it; stops in the reverse order, so the gateway drains before Envoy goes."""

    def __init__(
        self,
        gateway: GatewaySettings,
        stt: SttSettings,
        translate: TranslateSettings,
        edge: EdgeSettings | None = None,
    ) -> None:
        self.gateway_settings = gateway
        self.stt_settings = stt
        self.translate_settings = translate
        self.edge_settings = edge if edge is not None else EdgeSettings(enabled=False)
        self.stt: SttApp | None = None
        self.translate: TranslateApp | None = None
        self.gateway: GatewayApp | None = None
        self.edge: Edge | None = None

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
        settings = updated(
            self.gateway_settings,
            stt_target=self.stt.address,
            translate_target=self.translate.address,
        )
        self.gateway = GatewayApp(settings)
        await self.gateway.start()
        if self.edge_settings.enabled:
            self.edge = Edge(
                self.edge_settings,
                grpc_addresses=[(settings.host, self.gateway.host.port)],
                http_addresses=[(settings.host, self.gateway.web.port)],
            )
            await self.edge.start()
        return self.gateway.address

    def with_stt_model(self, model: str) -> "EmbeddedStack":
        """A stack like this one (not started) whose STT service serves `model`."""
        stt = updated(self.stt_settings, model=model)
        return EmbeddedStack(
            self.gateway_settings, stt, self.translate_settings, self.edge_settings
        )

    def endpoints(self) -> list[tuple[str, str]]:
        """(what, where) for each way in and each service, once started: what `make run`
        prints. The services' lines name their metrics, which may be on free ports."""
        assert self.gateway is not None
        assert self.stt is not None
        assert self.translate is not None
        services = (("gateway", self.gateway), ("stt", self.stt), ("translate", self.translate))
        return public_endpoints(self.gateway.address, self.gateway.http_address, self.edge) + [
            (name, f"{app.address}  metrics http://{app.settings.host}:{app.metrics.port}/metrics")
            for name, app in services
        ]

    @property
    def public_address(self) -> str:
        """Where gRPC clients should connect: Envoy when it runs, else the gateway."""
        assert self.gateway is not None
        return self.edge.address if self.edge is not None else self.gateway.address

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.edge is not None:
            await self.edge.stop()
        if self.translate is not None:
            await self.translate.stop()
        if self.stt is not None:
            await self.stt.stop()


def public_endpoints(grpc: str, http: str, edge: Edge | None) -> list[tuple[str, str]]:
    """(what, where) for each way into a stack whose gateway listens on `grpc` and `http`."""
    if edge is None:
        return [
            ("live-captions page", f"http://{http}/"),
            ("gRPC", grpc),
            ("WebSocket bridge", f"ws://{http}/ws/v1/recognize"),
        ]
    return [
        ("live-captions page", f"http://{edge.address}/"),
        ("gRPC through Envoy", edge.address),
        ("gRPC-Web", f"http://{edge.address}/"),
        ("WebSocket bridge", f"ws://{edge.address}/ws/v1/recognize"),
        ("gRPC, gateway direct", grpc),
        ("Envoy admin", f"http://127.0.0.1:{edge.admin_port}/"),
    ]


class Stack(Protocol):
    """Services started and stopped together: this process's, or `dragoman stack`'s."""

    async def start(self) -> object: ...

    async def stop(self) -> None: ...

    def endpoints(self) -> list[tuple[str, str]]: ...


async def run(stack: Stack, then: Callable[[], Awaitable[None]]) -> None:
    """Serves until SIGINT or SIGTERM; `then` runs once everything is ready."""
    try:
        await stack.start()
    except BaseException:
        await stack.stop()
        raise
    logger.info("Dragoman is serving: %s", dict(stack.endpoints()))
    await then()
    await run_until_signal(stack.stop)
