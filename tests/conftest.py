"""Shared fixtures: the real embedded stack (gateway + STT with tiny.en) on loopback ports.

The servers run on an event loop in a background thread for the whole session, as they
would in their own process; tests talk to them through ordinary synchronous gRPC stubs.
"""

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Collection, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from dragoman.api.speech.v1 import speech_pb2_grpc
from dragoman.gateway.app import GatewayApp
from dragoman.gateway.settings import GatewaySettings
from dragoman.launch.cli import PAGE
from dragoman.launch.edge import Edge
from dragoman.launch.embedded import EmbeddedStack
from dragoman.launch.redis_server import RedisServer
from dragoman.launch.stack_settings import EdgeSettings
from dragoman.launch.topology import free_port
from dragoman.stt.settings import SttSettings
from dragoman.translate.settings import TranslateSettings

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

    def stream_leftovers(self, *, besides: set[str] = frozenset()) -> list[str]:
        """What streams have left running, except what belongs to the sessions `besides`:
        their tasks anywhere on the loop (the gateway names them `session <id> ...`, the
        call's own task `session <id>`), and on the shared gateway their sessions still
        registered and their connections still counted as streaming."""
        assert self.stack.gateway is not None
        sessions = self.stack.gateway.sessions

        async def snapshot() -> tuple[list[str], list[str], int]:
            """Taken in one step of the loop, so that the three agree."""
            names = [task.get_name() for task in asyncio.all_tasks()]
            registered = [session.session_id for session in sessions.registry]
            return names, registered, sessions.active_streams

        names, registered, streaming = self.loop.run(snapshot())
        tasks = [name.split() for name in names if name.startswith("session ")]
        calls_besides = sum(len(task) == 2 and task[1] in besides for task in tasks)
        return [
            *(f"task {' '.join(task)!r}" for task in tasks if task[1] not in besides),
            *(f"session {id_} registered" for id_ in registered if id_ not in besides),
            *(f"stream {n} counted active" for n in range(1, streaming - calls_besides + 1)),
        ]

    def streams_settled(
        self, *, besides: set[str], before: Collection[str] = (), timeout_s: float = 5
    ) -> list[str]:
        """Waits until streams have left nothing but what belongs to the sessions `besides`
        or was there `before`; returns what is still there after `timeout_s` (nothing:
        settled)."""
        deadline = time.monotonic() + timeout_s
        while (
            left := [item for item in self.stream_leftovers(besides=besides) if item not in before]
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    def settled(self, baseline_tasks: int, timeout_s: float = 10) -> bool:
        """Waits until no stream is active and no task is left beyond `baseline_tasks`."""
        assert self.stack.gateway is not None
        sessions = self.stack.gateway.sessions
        deadline = time.monotonic() + timeout_s
        while sessions.active_streams or self.task_count() > baseline_tasks:
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
            web_root=str(PAGE),
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
        "web_root": str(PAGE),
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
