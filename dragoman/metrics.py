"""Prometheus metrics: one registry and one `/metrics` port per service.

Each service keeps its own registry, so that the three services of `dragoman serve` each
answer for themselves on their own port, exactly as they do when deployed apart. Every
gRPC call is counted by method and status code by one server interceptor, so "errors by
status code" needs no code in the servicers.
"""

import asyncio
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, get_args
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

logger = logging.getLogger(__name__)

Handler = Callable[[Any, grpc.aio.ServicerContext], Any]
WorkerState = Literal["loading", "ready", "failed"]


class Metrics:
    """A service's registry, its call counter, and the HTTP endpoint that serves them."""

    def __init__(self, service: str) -> None:
        self.prefix = f"dragoman_{service}"
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.calls = Counter(
            f"{self.prefix}_calls",
            "Calls answered, by method and gRPC status code (OK or the error's)",
            ["method", "code"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            f"{self.prefix}_calls_in_flight",
            "Calls being answered now, by method",
            ["method"],
            registry=self.registry,
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self, host: str, port: int) -> int:
        """Serves `/metrics` on its own port (0 picks a free one); returns the port."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = self._server.server_port
        logger.info("metrics on http://%s:%d/metrics", host, self.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def interceptor(self) -> grpc.aio.ServerInterceptor:
        return _CallCounter(self.calls, self.in_flight)


def _code(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED.name
    code = context.code()
    if code is not None and code != grpc.StatusCode.OK:
        return code.name if isinstance(code, grpc.StatusCode) else grpc.StatusCode(code).name
    return grpc.StatusCode.UNKNOWN.name if error is not None else grpc.StatusCode.OK.name


class _CallCounter(grpc.aio.ServerInterceptor):
    """Counts every finished call by method and status code."""

    def __init__(self, calls: Counter, in_flight: Gauge) -> None:
        self._calls = calls
        self._in_flight = in_flight

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._unary(handler.unary_unary, method))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self._unary(handler.stream_unary, method))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._streaming(handler.unary_stream, method))
        return handler._replace(stream_stream=self._streaming(handler.stream_stream, method))

    def _count(self, method: str, context: grpc.aio.ServicerContext, error: BaseException | None):
        self._calls.labels(method, _code(context, error)).inc()

    def _unary(self, behavior: Handler, method: str) -> Handler:
        async def counted(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                with self._in_flight.labels(method).track_inprogress():
                    response = await behavior(request, context)
            except BaseException as error:
                self._count(method, context, error)
                raise
            self._count(method, context, None)
            return response

        return counted

    def _streaming(self, behavior: Handler, method: str) -> Handler:
        async def counted(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                with self._in_flight.labels(method).track_inprogress():
                    responses = behavior(request, context)
                    if inspect.isasyncgen(responses):
                        async for response in responses:
                            yield response
                    else:
                        await responses  # a handler that writes with context.write (Watch)
            except BaseException as error:
                self._count(method, context, error)
                raise
            self._count(method, context, None)

        return counted


class WorkMetrics:
    """The queue and the workers of a model-serving replica: the STT service's models and
    the translation service's backends are measured alike, labelled by `worker`."""

    LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
    BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
    STATES: tuple[WorkerState, ...] = get_args(WorkerState)

    def __init__(self, metrics: Metrics, worker: str) -> None:
        """`worker` names a worker in the labels and in messages: "model", "backend"."""
        self.worker = worker
        prefix, registry = metrics.prefix, metrics.registry
        self.queue_depth = Gauge(
            f"{prefix}_queue_depth", "Jobs waiting for a worker", registry=registry
        )
        self.jobs = Counter(
            f"{prefix}_jobs", f"Jobs run, by {worker} and kind", [worker, "kind"], registry=registry
        )
        self.queue_wait = Histogram(
            f"{prefix}_queue_wait_seconds",
            "Time from a job's arrival to the start of its model call",
            [worker],
            buckets=self.LATENCY_BUCKETS,
            registry=registry,
        )
        self.run_time = Histogram(
            f"{prefix}_run_seconds",
            "Time a model call took (the whole batch's, for batched jobs)",
            [worker],
            buckets=self.LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            f"{prefix}_batch_size",
            "Jobs (STT) or texts (translation) per model call",
            [worker],
            buckets=self.BATCH_BUCKETS,
            registry=registry,
        )
        self.discarded_run = Counter(
            f"{prefix}_discarded_run_seconds",
            "Model time spent on jobs whose caller had gone before they finished",
            [worker],
            registry=registry,
        )
        self._state = Gauge(
            f"{prefix}_{worker}_state",
            f"1 for the load state each configured {worker} is in (loading, ready, failed)",
            [worker, "state"],
            registry=registry,
        )

    def set_state(self, worker: str, state: WorkerState) -> None:
        """Moves a model or backend to `state`: loading, ready or failed."""
        for each in self.STATES:
            self._state.labels(worker, each).set(1 if each == state else 0)

    def completed(
        self, worker: str, kind: str, *, queue_s: float, run_s: float, batch_size: int
    ) -> None:
        self.jobs.labels(worker, kind).inc()
        self.queue_wait.labels(worker).observe(queue_s)
        self.run_time.labels(worker).observe(run_s)
        self.batch_size.labels(worker).observe(batch_size)
