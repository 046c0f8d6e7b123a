"""A TCP proxy on loopback whose connections a test or benchmark can cut, as a mobile
network or a proxy that times out would."""

import asyncio
import contextlib


class CuttableProxy:
    """Forwards every connection to `upstream` (which may be changed, as a balancer
    picks another backend); `cut()` resets them all at once."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server: asyncio.Server | None = None
        self._connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.cuts = 0
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        pair = (writer, upstream_writer)
        self._connections.add(pair)
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            self._connections.discard(pair)
            for side in pair:
                side.close()

    def cut(self) -> int:
        """Resets every open connection; returns how many there were."""
        cut = list(self._connections)
        for pair in cut:
            for side in pair:
                side.transport.abort()
        self.cuts += 1
        return len(cut)

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError):
        writer.close()
