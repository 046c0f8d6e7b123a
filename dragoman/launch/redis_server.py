"""A real `redis-server` (Debian's package) on loopback, for `dragoman stack` and the tests.

It keeps everything in memory (no RDB, no AOF): what the stack keeps there (caption rooms)
is live state that a fresh server rebuilds as gateways renew it. It is a child that never
outlives its parent (see `dragoman.children`).
"""

import asyncio
import logging
import shutil
import tempfile
import time

import redis.asyncio as redis
from redis.exceptions import RedisError

from dragoman.launch.children import die_with_parent

logger = logging.getLogger(__name__)

POLL_S = 0.05
STOP_TIMEOUT_S = 10.0


class RedisServerError(RuntimeError):
    """redis-server could not be started; the message says why."""


class RedisServer:
    """One redis-server process on `port`; it can be stopped and started again there."""

    def __init__(self, port: int, *, binary: str = "redis-server") -> None:
        self.port = port
        self._binary = binary
        self._dir = tempfile.TemporaryDirectory(prefix="dragoman-redis-")
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self._process.pid if self._process is not None else 0

    async def start(self, timeout_s: float = 10.0) -> None:
        """Starts the server and returns once it answers PING."""
        binary = shutil.which(self._binary)
        if binary is None:
            raise RedisServerError(
                f"{self._binary} is not installed: `sudo apt-get install -y redis-server` "
                "(or point the gateways at a Redis with DRAGOMAN_GATEWAY_REDIS_URL)"
            )
        self._process = await asyncio.create_subprocess_exec(
            *die_with_parent(),
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
            "--loglevel",
            "warning",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port)
        try:
            while True:
                if self._process.returncode is not None:
                    raise RedisServerError(
                        f"redis-server exited with status {self._process.returncode} on port "
                        f"{self.port}; its log is above"
                    )
                try:
                    if await client.ping():
                        break
                except (RedisError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RedisServerError(f"redis-server did not answer within {timeout_s:g} s")
                await asyncio.sleep(POLL_S)
        finally:
            await client.aclose()
        logger.info("redis-server listening on 127.0.0.1:%d", self.port)

    async def stop(self) -> None:
        """SIGTERM; SIGKILL if it does not exit."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def close(self) -> None:
        await self.stop()
        self._dir.cleanup()
