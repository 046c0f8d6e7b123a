"""The lifecycle every Dragoman gRPC service shares: health, reflection, start and drain.

Health starts NOT_SERVING and turns SERVING only when the service says it is ready (its
model is loaded), so load balancers and Kubernetes probes never route to a cold replica.
"""

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from dragoman.auth import Authenticator, AuthInterceptor
from dragoman.errors import StatusError
from dragoman.logs import segment_id_var, session_id_var
from dragoman.metrics import Metrics
from dragoman.tls import ServerTlsSettings, server_credentials
from dragoman.tracing import Tracing

logger = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB
PREVIOUS_ATTEMPTS = "grpc-previous-rpc-attempts"
"""Metadata gRPC adds to a retried call: how many attempts came before."""
CONNECTION_AGE_GRACE_S = 60.0
"""How long calls in flight on a connection closed for its age may still take: longer than
the internal calls' deadlines (the gateway's `stt_timeout_s` and `translate_timeout_s`, 30 s
by default; a longer deadline is cut here)."""
T = TypeVar("T")
ErrorCodes = Sequence[tuple[type[Exception], grpc.StatusCode]]
"""A service's one mapping to the status codes callers get of the errors that name none:
those of its modules that know nothing of gRPC (queues, engines). A StatusError names its
own."""


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Message limits shared by servers and the channels between services."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


async def answer(
    context: grpc.aio.ServicerContext,
    call: Awaitable[T],
    *,
    codes: ErrorCodes,
    session_id: str = "",
    segment_id: int = 0,
) -> T:
    """Runs one internal call with the caller's session and segment ids on every log line,
    and aborts with the error's status when it raises a StatusError or an error of `codes`.

    A call that gRPC's retry policy moved here from a failed replica says so: its span
    carries `dragoman.previous_attempts`, so the trace shows the failover."""
    session_token = session_id_var.set(session_id)
    segment_token = segment_id_var.set(segment_id)
    metadata = dict(context.invocation_metadata() or ())
    previous = int(metadata.get(PREVIOUS_ATTEMPTS, 0) or 0)
    span = trace.get_current_span()
    span.set_attributes({"dragoman.session_id": session_id, "dragoman.segment_id": segment_id})
    if previous:
        span.set_attribute("dragoman.previous_attempts", previous)
        logger.info("retried call: %d earlier attempts failed elsewhere", previous)
    refused = (StatusError, *(error_type for error_type, _ in codes))
    try:
        return await call
    except refused as error:
        logger.info("refused: %s", error)
        await context.abort(_status_code(error, codes), str(error))
    finally:
        session_id_var.reset(session_token)
        segment_id_var.reset(segment_token)


def _status_code(error: Exception, codes: ErrorCodes) -> grpc.StatusCode:
    if isinstance(error, StatusError):
        return error.code
    return next(code for error_type, code in codes if isinstance(error, error_type))


class ServiceHost:
    """Owns one `grpc.aio.Server` with health checking, reflection, tracing and metrics."""

    def __init__(
        self,
        service_names: Sequence[str],
        *,
        max_message_bytes: int,
        tracing: Tracing,
        metrics: Metrics,
        tls: ServerTlsSettings,
        authenticator: Authenticator | None = None,
        max_connection_age_s: float | None = None,
        stream_window_bytes: int | None = None,
    ) -> None:
        """`authenticator` guards every method but health and reflection when it is
        enabled; `tls` names the certificates of the port (none: plaintext);
        `max_connection_age_s` has clients reconnect, and so re-resolve, that often.

        `stream_window_bytes` fixes each stream's HTTP/2 receive window: a stream the
        server stops reading then holds at most that much. By default gRPC grows windows
        by bandwidth-delay probing, to megabytes on a fast link."""
        self.service_names = list(service_names)
        self.tracing = tracing
        self.metrics = metrics
        self._credentials = server_credentials(
            tls.tls_cert_file, tls.tls_key_file, tls.tls_client_ca_file
        )
        interceptors = [tracing.server_interceptor(), metrics.interceptor()]
        if authenticator is not None and authenticator.enabled:
            interceptors.append(AuthInterceptor(authenticator))
        options = channel_options(max_message_bytes)
        if max_connection_age_s is not None:
            options += [
                ("grpc.max_connection_age_ms", int(max_connection_age_s * 1000)),
                ("grpc.max_connection_age_grace_ms", int(CONNECTION_AGE_GRACE_S * 1000)),
            ]
        if stream_window_bytes is not None:
            options += [
                ("grpc.http2.bdp_probe", 0),
                ("grpc.http2.lookahead_bytes", stream_window_bytes),
            ]
        self.server = grpc.aio.server(options=options, interceptors=interceptors)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = 0

    async def start(self, host: str, port: int, metrics_port: int) -> int:
        """Binds and starts serving (NOT_SERVING until `set_serving`), and starts the metrics
        endpoint; returns the bound gRPC port."""
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        address = f"{host}:{port}"
        self.port = (
            self.server.add_secure_port(address, self._credentials)
            if self._credentials is not None
            else self.server.add_insecure_port(address)
        )
        await self.server.start()
        self.metrics.start(host, metrics_port)
        return self.port

    async def set_serving(self) -> None:
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float) -> None:
        """Reports NOT_SERVING, refuses new calls and lets calls in flight end within grace;
        then exports the last spans and closes the metrics endpoint."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        self.metrics.stop()
        self.tracing.shutdown()


async def run_until_signal(
    stop: Callable[[], Awaitable[None]], *, signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)
) -> None:
    """Waits for SIGINT or SIGTERM, then runs `stop` once."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
        logger.info("signal received, draining")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await stop()


class ReplicaSettings(Protocol):
    tls: ServerTlsSettings
    host: str
    port: int
    max_message_bytes: int
    drain_grace_s: float
    metrics_port: int
    max_connection_age_s: float


class Replica:
    """A model-serving replica: bound first, models loaded in the background, drained last.

    The port is bound before the models load, so that probes see a live NOT_SERVING replica
    instead of a refused connection while weights are verified and loaded (seconds on CPU).
    Subclasses say what they serve (`_register`), how they load (`_load`, which sets
    `ready` and turns health SERVING) and what they free (`_close`).
    """

    service_name: str
    description: str
    telemetry_name: str
    """Names its metrics (`dragoman_<name>_...`) and its traces (`dragoman-<name>`)."""

    def __init__(self, settings: ReplicaSettings) -> None:
        self.settings = settings
        self.metrics = Metrics(self.telemetry_name)
        self.tracing = Tracing(f"dragoman-{self.telemetry_name}")
        self._host: ServiceHost | None = None
        self._loading: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None

    @property
    def address(self) -> str:
        """Where the replica listens, once started."""
        port = self._host.port if self._host is not None else self.settings.port
        return f"{self.settings.host}:{port}"

    async def start(self) -> int:
        """Binds (port 0 picks a free one), starts loading and returns the port.

        The gRPC server is built here because it belongs to the running event loop.
        """
        self._check()
        self._host = ServiceHost(
            [self.service_name],
            max_message_bytes=self.settings.max_message_bytes,
            tracing=self.tracing,
            metrics=self.metrics,
            tls=self.settings.tls,
            max_connection_age_s=self.settings.max_connection_age_s,
        )
        self._register(self._host.server)
        port = await self._host.start(
            self.settings.host, self.settings.port, self.settings.metrics_port
        )
        logger.info("%s listening on %s", self.description, self.address)
        self._ready = asyncio.get_running_loop().create_future()
        self._loading = asyncio.create_task(self._load(self._host, self._ready))
        return port

    async def wait_ready(self) -> None:
        """Returns once the replica serves; raises the load error otherwise."""
        if self._ready is None:
            raise RuntimeError(f"{type(self).__name__}.start() was not called")
        await asyncio.shield(self._ready)

    async def stop(self) -> None:
        """Drains calls in flight within the grace period, then frees the model threads."""
        if self._host is not None:
            await self._host.stop(self.settings.drain_grace_s)
        if self._loading is not None:
            self._loading.cancel()
        await self._close()
        logger.info("%s stopped", self.description)

    def _check(self) -> None:
        """Fails fast, before binding, on settings that cannot work."""

    def _register(self, server: grpc.aio.Server) -> None:
        raise NotImplementedError

    async def _load(self, host: ServiceHost, ready: asyncio.Future[None]) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError


async def serve_replica(replica: Replica) -> None:
    """Runs a replica until SIGINT or SIGTERM, then drains it."""
    await replica.start()
    await run_until_signal(replica.stop)
