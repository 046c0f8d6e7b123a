"""`dragoman stack`: the cluster's topology on one machine.

Every service runs in its own process on loopback: several STT and translation replicas,
one gateway that balances over them with gRPC's own `round_robin` and retry policy, and
Envoy in front. A replica that dies is started again on its port with growing backoff, as
Kubernetes restarts a crashed container; the gateway's channels find it again by
themselves and, until it reports SERVING, send its share to the others.
"""

import asyncio
import logging
import os
import socket
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dragoman.children import die_with_parent
from dragoman.edge import Edge
from dragoman.embedded import public_endpoints
from dragoman.settings import as_environment
from dragoman.stack_settings import EdgeSettings, TopologySettings
from server.app import SERVICE_NAME as GATEWAY_SERVICE
from server.settings import GatewaySettings
from stt.service import SERVICE_NAME as STT_SERVICE
from stt.settings import SttSettings
from translate.service import SERVICE_NAME as TRANSLATE_SERVICE
from translate.settings import TranslateSettings

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
            "dragoman.cli",
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
            _replica(f"stt-{i + 1}", "stt", stt, STT_SERVICE) for i in range(topology.stt_replicas)
        ] + [
            _replica(f"translate-{i + 1}", "translator", translate, TRANSLATE_SERVICE)
            for i in range(topology.translate_replicas)
        ]
        gateway = _with_free_ports(gateway, "port", "http_port", "metrics_port")
        self.gateway = ServiceProcess(
            "gateway",
            "gateway",
            gateway.model_copy(
                update={
                    "stt_target": _balanced_target(self.replicas, "stt"),
                    "translate_target": _balanced_target(self.replicas, "translator"),
                }
            ),
            GATEWAY_SERVICE,
        )
        self.edge = (
            Edge(
                edge,
                grpc_address=(gateway.host, gateway.port),
                http_address=(gateway.host, gateway.http_port),
            )
            if edge.enabled
            else None
        )
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        await asyncio.gather(*(replica.start() for replica in self.replicas))
        await self._all_serving(self.replicas)
        await self.gateway.start()
        await self._all_serving([self.gateway])
        if self.edge is not None:
            await self.edge.start()
        self._supervisors = [
            asyncio.create_task(self._supervise(replica), name=f"supervise {replica.name}")
            for replica in self.replicas
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
        settings = self.gateway.settings
        assert isinstance(settings, GatewaySettings)
        processes = [
            (
                service.name,
                f"{service.address}  metrics {service.metrics_url}  pid {_pid(service)}",
            )
            for service in [self.gateway, *self.replicas]
        ]
        http = f"{settings.host}:{settings.http_port}"
        return public_endpoints(self.gateway.address, http, self.edge) + processes

    async def stop(self) -> None:
        self._stopping = True
        for supervisor in self._supervisors:
            supervisor.cancel()
        await self.gateway.stop()
        if self.edge is not None:
            await self.edge.stop()
        await asyncio.gather(*(replica.stop() for replica in self.replicas))


def _pid(service: ServiceProcess) -> int:
    return service.process.pid if service.process is not None else 0


def _replica(
    name: str,
    command: str,
    settings: SttSettings | TranslateSettings,
    health_service: str,
) -> ServiceProcess:
    """Replicas listen on loopback, each on ports of its own."""
    settings = settings.model_copy(
        update={"host": "127.0.0.1", "port": free_port(), "metrics_port": free_port()}
    )
    return ServiceProcess(name, command, settings, health_service)


def _with_free_ports(settings: GatewaySettings, *fields: str) -> GatewaySettings:
    """Port 0 means any free port; the launcher picks it, as it must know it to connect."""
    return settings.model_copy(
        update={field: free_port() for field in fields if getattr(settings, field) == 0}
    )


def _balanced_target(replicas: list[ServiceProcess], command: str) -> str:
    """A gRPC target naming every replica, which `round_robin` balances over."""
    addresses = [replica.address for replica in replicas if replica.command == command]
    return "ipv4:" + ",".join(addresses)
