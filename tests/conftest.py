"""Shared fixtures: the real embedded stack (gateway + STT with tiny.en) on loopback ports.

The servers run on an event loop in a background thread for the whole session, as they
would in their own process; tests talk to them through ordinary synchronous gRPC stubs.
"""

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from dragoman.embedded import EmbeddedStack
from dragoman.speech.v1 import speech_pb2_grpc
from server.settings import GatewaySettings
from stt.settings import SttSettings
from translate.settings import TranslateSettings

DATA = Path(__file__).parent / "data" / "speech"
T = TypeVar("T")


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

    def task_count(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks())

        return self.loop.run(count())


@pytest.fixture(scope="session")
def manifest() -> list[dict]:
    return json.loads((DATA / "manifest.json").read_text())


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


def embedded_stack(model: str, model_cache_dir: Path | None = None) -> EmbeddedStack:
    """Every service on loopback, on free ports, with Bergamot for translation."""
    cache = {"model_cache_dir": model_cache_dir} if model_cache_dir else {}
    return EmbeddedStack(
        GatewaySettings(host="127.0.0.1", port=0, drain_grace_s=1.0),
        SttSettings(host="127.0.0.1", port=0, model=model, drain_grace_s=1.0, **cache),
        TranslateSettings(host="127.0.0.1", port=0, drain_grace_s=1.0),
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
