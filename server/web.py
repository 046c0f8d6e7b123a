"""The gateway's HTTP server: the WebSocket bridge and the live-captions page, behind Envoy.

The page is served from the same origin as the bridge and the gRPC-Web routes, so a browser
needs no CORS for its own page; Envoy's CORS policy is there for pages hosted elsewhere.
"""

import logging
from pathlib import Path

from aiohttp import web

from dragoman.gateway.bridge import PATH, WebSocketBridge

logger = logging.getLogger(__name__)

NOT_BUILT = "the web page is not built: run `make web`, or set DRAGOMAN_GATEWAY_WEB_ROOT\n"


class WebServer:
    """Owns the aiohttp runner of the bridge and the page."""

    def __init__(self, bridge: WebSocketBridge, web_root: str, *, drain_grace_s: float) -> None:
        self._root = Path(web_root) if web_root else None
        app = web.Application()
        app.router.add_get(PATH, bridge.handle)
        app.router.add_get("/", self._index)
        if self._root is not None and self._root.is_dir():
            app.router.add_static("/", self._root)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=drain_grace_s
        )
        self.port = 0

    async def _index(self, request: web.Request) -> web.StreamResponse:
        index = None if self._root is None else self._root / "index.html"
        if index is None or not index.is_file():
            return web.Response(status=404, text=NOT_BUILT)
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

    async def start(self, host: str, port: int) -> int:
        """Binds and serves; returns the bound port."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        if self._root is None or not self._root.is_dir():
            logger.warning("no web page at %s: %s", self._root or "(none)", NOT_BUILT.strip())
        return self.port

    async def stop(self) -> None:
        """Stops listening, then gives sockets in flight the drain grace to finish."""
        await self._runner.cleanup()
