"""`dragoman serve` in a process of its own, for measurements that must be the server's.

A benchmark or soak that ran the services in its own process would count its own client
work as the server's CPU and memory. Here the server runs apart, on free ports, and its
figures come from its own Prometheus endpoints and from /proc.
"""

import asyncio
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

READY_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """One `dragoman serve` (gateway, STT and translation, no Envoy) on loopback."""

    def __init__(self, serve_args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.metrics_ports = {"gateway": free_port(), "stt": free_port()}
        self._args = [
            *("--port", str(self.port), "--http-port", "0", "--no-edge-enabled"),
            *("--metrics-port", str(self.metrics_ports["gateway"])),
            *("--stt-metrics-port", str(self.metrics_ports["stt"])),
            *("--translate-metrics-port", "0", "--log-level", "WARNING"),
            *serve_args,
        ]
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> "ServerProcess":
        self._process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "dragoman"),
            "serve",
            *self._args,
            stdout=asyncio.subprocess.DEVNULL,
        )
        await asyncio.wait_for(self._serving(), READY_TIMEOUT_S)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()

    async def _serving(self) -> None:
        async with grpc.aio.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            async for status in health.Watch(request, wait_for_ready=True):
                if status.status == health_pb2.HealthCheckResponse.SERVING:
                    return

    def samples(self, service: str = "gateway") -> dict[str, float]:
        """The service's metrics: each sample's value, summed over its labels."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_ports[service]}/metrics", timeout=10)
        summed: dict[str, float] = {}
        for family in text_string_to_metric_families(text.text):
            for sample in family.samples:
                summed[sample.name] = summed.get(sample.name, 0.0) + sample.value
        return summed

    def peak_rss_bytes(self) -> int:
        """The process's peak resident memory since it started (Linux's VmHWM)."""
        assert self._process is not None
        status = Path(f"/proc/{self._process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
