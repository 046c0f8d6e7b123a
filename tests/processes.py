"""Dragoman services as separate processes, the way operators run them."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

BIN = Path(sys.executable).parent
READY = "Press Ctrl-C to stop."


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


def isolated(environment: dict[str, str]) -> dict[str, str]:
    """This process's environment without what would reach back into the checkout or its
    virtual environment, plus `environment`."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "VIRTUAL_ENV") and not name.startswith("DRAGOMAN_")
    }
    return {**inherited, **environment}


class Launcher:
    """A `dragoman` launcher (`serve`, `stack`), read until it prints its URLs. `program`,
    `environment` and `cwd` start another installation's `dragoman` instead of this one's."""

    def __init__(
        self,
        *arguments: str,
        program: Path = BIN / "dragoman",
        environment: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.process = subprocess.Popen(
            [str(program), *arguments],
            env=environment,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if READY in line:
                break
        text = "".join(self.output)
        assert READY in text, text[-3000:]
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self) -> None:
        """Keeps reading, so that the launcher never blocks on a full pipe."""
        assert self.process.stdout is not None
        self.output.extend(self.process.stdout)

    def endpoint(self, what: str) -> str:
        """The first word printed after `what` in the ready message."""
        text = "".join(self.output)
        found = re.search(rf"^  {re.escape(what)}\s+(\S+)", text, re.MULTILINE)
        assert found, f"{what!r} not among the endpoints:\n{text[-3000:]}"
        return found.group(1)

    def pid(self, what: str) -> int:
        """The pid printed on the line of process `what`."""
        text = "".join(self.output)
        found = re.search(rf"^  {re.escape(what)}\s+.*\bpid (\d+)$", text, re.MULTILINE)
        assert found, f"no pid for {what!r}:\n{text[-3000:]}"
        return int(found.group(1))

    def metrics_port(self, what: str) -> int:
        """The port of the /metrics URL printed on the line of process `what`."""
        text = "".join(self.output)
        found = re.search(rf"^  {re.escape(what)}\s+.*metrics http://[^:]+:(\d+)/", text, re.M)
        assert found, f"no metrics for {what!r}:\n{text[-3000:]}"
        return int(found.group(1))

    def wait(self, timeout_s: float = 60) -> int:
        code = self.process.wait(timeout_s)
        self._drain.join(timeout_s)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


def children(parent: int) -> dict[int, str]:
    """The processes whose parent is `parent`: pid and command name."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if int(fields.split()[1]) == parent:
            found[int(stat.parent.name)] = name.split("(", 1)[1]
    return found


def envoy_pid(parent: int) -> int:
    envoys = [pid for pid, name in children(parent).items() if name == "envoy"]
    assert envoys, f"no Envoy among the children of {parent}"
    return envoys[0]


def gone(pid: int, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False
