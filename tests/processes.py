"""Dragoman services as separate processes, the way operators run them."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Processes:
    """Starts `dragoman` services with JSON logs in `logs/`; stops them all with SIGTERM."""

    def __init__(self, logs: Path, environment: dict[str, str]) -> None:
        self.logs = logs
        self._environment = {**os.environ, **environment}
        self._started: list[tuple[subprocess.Popen, IO[str]]] = []

    def start(self, name: str, *args: str, metrics_port: int = 0) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(
            [str(BIN / "dragoman"), *args, "--log-json", "--metrics-port", str(metrics_port)],
            env=self._environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._started.append((process, log))
        return process

    def stop(self) -> None:
        for process, _ in self._started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, log in self._started:
            process.wait(30)
            log.close()


def wait_serving(address: str, timeout_s: float = 120) -> None:
    """Returns once the service at `address` reports SERVING."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        while True:
            status = check(health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=timeout_s)
            if status.status == health_pb2.HealthCheckResponse.SERVING:
                return
            assert time.monotonic() < deadline, f"{address} never turned SERVING"
            time.sleep(0.2)
