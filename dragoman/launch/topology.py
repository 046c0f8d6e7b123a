"""`dragoman stack`: the cluster's topology on one machine.

Every service runs in its own process on loopback: several STT and translation replicas,
several gateways that balance over them with gRPC's own `round_robin` and retry policy,
a redis-server where the gateways share their caption rooms, and Envoy in front of the
gateways. A service that dies is started again on its port with growing backoff, as
Kubernetes restarts a crashed container; the channels find it again by themselves and,
until it reports SERVING, send its share to the others.
"""

import asyncio
import logging
import os
import socket
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dragoman.gateway.app import SERVICE_NAME as GATEWAY_SERVICE
from dragoman.gateway.settings import GatewaySettings
from dragoman.interfaces import STT_SERVICE_NAME, TRANSLATE_SERVICE_NAME
from dragoman.launch.children import die_with_parent
from dragoman.launch.edge import Edge
from dragoman.launch.embedded import public_endpoints
from dragoman.launch.redis_server import RedisServer
from dragoman.launch.stack_settings import EdgeSettings, TopologySettings
from dragoman.settings import as_environment, updated
from dragoman.stt.settings import SttSettings
from dragoman.translate.settings import TranslateSettings

logger = logging.getLogger(__name__)

HEALTH_POLL_S = 0.2
STOP_MARGIN_S = 5.0
"""Time a service gets past its drain grace before it is killed."""
HEALTHY_RUN_S = 60.0
"""A replica that served this long starts again without backoff when it dies."""


class StackError(RuntimeError):
    """A service of the stack could not be started; the message says which and why."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServiceProcess:
    """One `dragoman <command>` child, its settings handed over as `DRAGOMAN_*` variables."""

    def __init__(
        self,
        name: str,
        command: str,
        settings: GatewaySettings | SttSettings | TranslateSettings,
        health_service: str,
    ) -> None:
        self.name = name
        self.settings = settings
        self.address = f"{settings.host}:{settings.port}"
        self.command = command
        self._health_service = health_service
        self._environment = {**os.environ, **as_environment(settings)}
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.restarts = 0

    @property
    def metrics_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.metrics_port}/metrics"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *die_with_parent(),
            sys.executable,
            "-m",
            "dragoman.launch.cli",
            self.command,
            env=self._environment,
            stdin=asyncio.subprocess.DEVNULL,
        )
        self.started_at = time.monotonic()

    async def wait_serving(self, timeout_s: float) -> None:
        """Returns once the process reports SERVING; raises StackError if it exits first."""
        deadline = time.monotonic() + timeout_s
        async with grpc.aio.insecure_channel(self.address) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            request = health_pb2.HealthCheckRequest(service=self._health_service)
            while True:
                if self.process is None or self.process.returncode is not None:
                    code = None if self.process is None else self.process.returncode
                    raise StackError(f"{self.name} exited with status {code}; its log is above")
                if time.monotonic() > deadline:
                    raise StackError(f"{self.name} did not turn SERVING within {timeout_s:g} s")
                try:
                    status = await check(request, timeout=1)
                    if status.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                await asyncio.sleep(HEALTH_POLL_S)

    async def stop(self) -> None:
        """SIGTERM, as a container runtime sends it; SIGKILL once the drain grace is over."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), self.settings.drain_grace_s + STOP_MARGIN_S)
        except TimeoutError:
            logger.warning("%s did not stop within its drain grace; killing it", self.name)
            process.kill()
            await process.wait()


class Topology:
    """Starts the replicas, then the gateway pointed at all of them, then Envoy; supervises
    the replicas; stops in the reverse order so the gateway drains before its backends."""

    def __init__(
        self,
        topology: TopologySettings,
        gateway: GatewaySettings,
        stt: SttSettings,
        translate: TranslateSettings,
        edge: EdgeSettings,
    ) -> None:
        self.settings = topology
        self.replicas = [
            _replica(f"stt-{i + 1}", "stt", stt, STT_SERVICE_NAME)
            for i in range(topology.stt_replicas)
        ] + [
            _replica(f"translate-{i + 1}", "translator", translate, TRANSLATE_SERVICE_NAME)
            for i in range(topology.translate_replicas)
        ]
        self.redis = (
            None if gateway.redis.redis_url else RedisServer(topology.redis_port or free_port())
        )
        backends = {
            "stt_target": _balanced_target(self.replicas, "stt"),
            "translate_target": _balanced_target(self.replicas, "translator"),
            "redis_url": self.redis.url if self.redis is not None else gateway.redis.redis_url,
        }
        self.gateways = [
            ServiceProcess(
                f"gateway-{i + 1}",
                "gateway",
                updated(_with_free_ports(gateway, every=i > 0), **backends),
                GATEWAY_SERVICE,
            )
            for i in range(topology.gateways)
        ]
        self.edge = (
            Edge(
                edge,
                grpc_addresses=[_address(g, "port") for g in self.gateways],
                http_addresses=[_address(g, "http_port") for g in self.gateways],
            )
            if edge.enabled
            else None
        )
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        if self.redis is not None:
            await self.redis.start()
        await asyncio.gather(*(replica.start() for replica in self.replicas))
        await self._all_serving(self.replicas)
        await asyncio.gather(*(gateway.start() for gateway in self.gateways))
        await self._all_serving(self.gateways)
        if self.edge is not None:
            await self.edge.start()
        self._supervisors = [
            asyncio.create_task(self._supervise(service), name=f"supervise {service.name}")
            for service in [*self.gateways, *self.replicas]
        ]

    async def _all_serving(self, services: list[ServiceProcess]) -> None:
        timeout_s = self.settings.start_timeout_s
        await asyncio.gather(*(service.wait_serving(timeout_s) for service in services))

    async def _supervise(self, replica: ServiceProcess) -> None:
        backoff_s = 1.0
        while not self._stopping:
            assert replica.process is not None
            code = await replica.process.wait()
            if self._stopping:
                return
            if time.monotonic() - replica.started_at > HEALTHY_RUN_S:
                backoff_s = 1.0
            logger.warning(
                "%s exited with status %s; starting it again in %g s", replica.name, code, backoff_s
            )
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, self.settings.restart_backoff_max_s)
            if not self._stopping:
                replica.restarts += 1
                await replica.start()

    def endpoints(self) -> list[tuple[str, str]]:
        """(what, where) for each way in and each process, once started."""
        first = self.gateways[0].settings
        assert isinstance(first, GatewaySettings)
        processes = [
            (
                service.name,
                f"{service.address}  metrics {service.metrics_url}  pid {_pid(service)}",
            )
            for service in [*self.gateways, *self.replicas]
        ]
        if self.redis is not None:
            processes.append(("redis", f"{self.redis.url}  pid {self.redis.pid}"))
        http = f"{first.host}:{first.http_port}"
        return public_endpoints(self.gateways[0].address, http, self.edge) + processes

    async def stop(self) -> None:
        self._stopping = True
        for supervisor in self._supervisors:
            supervisor.cancel()
        await asyncio.gather(*(gateway.stop() for gateway in self.gateways))
        if self.edge is not None:
            await self.edge.stop()
        await asyncio.gather(*(replica.stop() for replica in self.replicas))
        if self.redis is not None:
            await self.redis.close()


def _pid(service: ServiceProcess) -> int:
    return service.process.pid if service.process is not None else 0


def _replica(
    name: str,
    command: str,
    settings: SttSettings | TranslateSettings,
    health_service: str,
) -> ServiceProcess:
    """Replicas listen on loopback, each on ports of its own."""
    settings = updated(settings, host="127.0.0.1", port=free_port(), metrics_port=free_port())
    return ServiceProcess(name, command, settings, health_service)


def _with_free_ports(settings: GatewaySettings, *, every: bool) -> GatewaySettings:
    """Port 0 means any free port; the launcher picks it, as it must know it to connect.
    Gateways after the first take free ports whatever was configured, as they share the
    host with the first."""
    fields = ("port", "http_port", "metrics_port")
    return updated(
        settings,
        **{field: free_port() for field in fields if every or getattr(settings, field) == 0},
    )


def _address(service: ServiceProcess, port: str) -> tuple[str, int]:
    return service.settings.host, getattr(service.settings, port)


def _balanced_target(replicas: list[ServiceProcess], command: str) -> str:
    """A gRPC target naming every replica, which `round_robin` balances over."""
    addresses = [replica.address for replica in replicas if replica.command == command]
    return "ipv4:" + ",".join(addresses)
