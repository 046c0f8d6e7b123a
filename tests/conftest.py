"""Shared fixtures: the real embedded stack (gateway + STT with tiny.en) on loopback ports.

The servers run on an event loop in a background thread for the whole session, as they
would in their own process; tests talk to them through ordinary synchronous gRPC stubs.
"""

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from dragoman.gateway.app import GatewayApp
from dragoman.gateway.settings import GatewaySettings
from dragoman.stt.settings import SttSettings
from dragoman.translate.settings import TranslateSettings

from dragoman.api.speech.v1 import speech_pb2_grpc
from dragoman.launch.edge import Edge
from dragoman.launch.embedded import EmbeddedStack
from dragoman.launch.redis_server import RedisServer
from dragoman.launch.stack_settings import EdgeSettings
from dragoman.launch.topology import free_port

DATA = Path(__file__).parent / "data" / "speech"
T = TypeVar("T")
RESUME_GRACE_S = 1.0
"""Short, so that tests that leave a stream see its session released soon after."""


class LoopThread:
    """An asyncio loop on a daemon thread, to host async servers under sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class RunningStack:
    address: str
    stack: EmbeddedStack
    loop: LoopThread
    channel: grpc.Channel

    @property
    def stub(self) -> speech_pb2_grpc.SpeechServiceStub:
        return speech_pb2_grpc.SpeechServiceStub(self.channel)

    @property
    def bridge_url(self) -> str:
        """The WebSocket bridge, straight to the gateway."""
        assert self.stack.gateway is not None
        return f"ws://{self.stack.gateway.http_address}/ws/v1/recognize"

    def task_count(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks())

        return self.loop.run(count())

    def stream_tasks(self, *, besides: set[str] = frozenset()) -> list[str]:
        """Names of the tasks of streams (named `session <id> ...` by the gateway), except
        those of the sessions `besides`."""

        async def names() -> list[str]:
            return [task.get_name() for task in asyncio.all_tasks()]

        return [
            name
            for name in self.loop.run(names())
            if name.startswith("session ") and name.split()[1] not in besides
        ]

    def streams_settled(self, *, besides: set[str], timeout_s: float = 5) -> list[str]:
        """Waits until the only stream tasks left are those of the sessions `besides`;
        returns the names of those still there after `timeout_s` (none: settled)."""
        deadline = time.monotonic() + timeout_s
        while (left := self.stream_tasks(besides=besides)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    def settled(self, baseline_tasks: int, timeout_s: float = 10) -> bool:
        """Waits until no stream is active and no task is left beyond `baseline_tasks`."""
        assert self.stack.gateway is not None
        servicer = self.stack.gateway.servicer
        deadline = time.monotonic() + timeout_s
        while servicer.active_streams or self.task_count() > baseline_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


@pytest.fixture(scope="session")
def manifest() -> list[dict]:
    return json.loads((DATA / "manifest.json").read_text())


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def redis_server(loop_thread: LoopThread) -> Iterator[RedisServer]:
    """A real redis-server (Debian's package, installed by `make test`) for the session."""
    server = RedisServer(free_port())
    loop_thread.run(server.start())
    yield server
    loop_thread.run(server.close())


def embedded_stack(model: str, model_cache_dir: Path | None = None) -> EmbeddedStack:
    """Every service on loopback, on free ports, with Bergamot for translation."""
    cache = {"model_cache_dir": model_cache_dir} if model_cache_dir else {}
    return EmbeddedStack(
        GatewaySettings(
            host="127.0.0.1",
            port=0,
            http_port=0,
            metrics_port=0,
            drain_grace_s=1.0,
            resume_grace_s=RESUME_GRACE_S,
        ),
        SttSettings(
            host="127.0.0.1", port=0, metrics_port=0, model=model, drain_grace_s=1.0, **cache
        ),
        TranslateSettings(host="127.0.0.1", port=0, metrics_port=0, drain_grace_s=1.0),
    )


def running(embedded: EmbeddedStack, loop_thread: LoopThread) -> Iterator[RunningStack]:
    address = loop_thread.run(embedded.start(), timeout_s=300)
    channel = grpc.insecure_channel(address)
    yield RunningStack(address, embedded, loop_thread, channel)
    channel.close()
    loop_thread.run(embedded.stop())


@pytest.fixture(scope="session")
def stack(loop_thread: LoopThread) -> Iterator[RunningStack]:
    """The default stack: tiny.en."""
    yield from running(embedded_stack("tiny.en"), loop_thread)


@contextlib.contextmanager
def edge_in_front(gateway: GatewayApp, loop: LoopThread) -> Iterator[Edge]:
    """The real Envoy, from deploy/envoy.yaml, in front of `gateway`."""
    edge = Edge(
        EdgeSettings(port=0, admin_port=0),
        grpc_addresses=[("127.0.0.1", gateway.host.port)],
        http_addresses=[("127.0.0.1", gateway.web.port)],
    )
    loop.run(edge.start())
    try:
        yield edge
    finally:
        loop.run(edge.stop())


@pytest.fixture(scope="session")
def edge(stack: RunningStack) -> Iterator[Edge]:
    """Envoy in front of the default stack."""
    assert stack.stack.gateway is not None
    with edge_in_front(stack.stack.gateway, stack.loop) as running_edge:
        yield running_edge


@contextlib.contextmanager
def own_gateway(stack: RunningStack, **settings: Any) -> Iterator[GatewayApp]:
    """A gateway of its own with `settings`, in front of the session's STT and translation
    services: for limits and draining, which must not touch the shared gateway."""
    assert stack.stack.stt is not None
    assert stack.stack.translate is not None
    defaults = {
        "host": "127.0.0.1",
        "port": 0,
        "http_port": 0,
        "metrics_port": 0,
        "stt_target": stack.stack.stt.address,
        "translate_target": stack.stack.translate.address,
        "drain_grace_s": 1.0,
        "resume_grace_s": RESUME_GRACE_S,
    }

    async def start() -> GatewayApp:
        app = GatewayApp(GatewaySettings(**(defaults | settings)))
        await app.start()
        return app

    app = stack.loop.run(start())
    try:
        yield app
    finally:
        stack.loop.run(app.stop())
