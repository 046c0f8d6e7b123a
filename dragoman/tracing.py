"""OpenTelemetry traces for every service, exported where the standard `OTEL_*` variables say.

Each service owns a tracer provider of its own, so that its spans carry its own
`service.name` even when the three services share one process (`dragoman serve`), and the
gRPC interceptors of its server and its channels use that provider: a W3C `traceparent`
crosses every hop, and a trace that a client (a browser through Envoy) started goes on.

`OTEL_TRACES_EXPORTER` picks the exporters: `none` (the default: spans are not even
recorded), `otlp` (over gRPC, or HTTP with `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`;
the endpoint and headers come from the exporter's own `OTEL_EXPORTER_OTLP_*` variables)
and `console`, several separated by commas.
"""

import os
from collections.abc import Mapping, Sequence

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from dragoman.settings import SettingsError

EXPORTERS_VARIABLE = "OTEL_TRACES_EXPORTER"
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
EXPORTER_NAMES = ("none", "otlp", "console")


class TracingConfigError(SettingsError):
    """An `OTEL_*` variable names an exporter or protocol that does not exist."""


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    protocol = next((environ[v] for v in PROTOCOL_VARIABLES if environ.get(v)), "grpc")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter()
    raise TracingConfigError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use grpc or http/protobuf"
    )


def exporters_from_environment(environ: Mapping[str, str] = os.environ) -> list[SpanExporter]:
    """The exporters `OTEL_TRACES_EXPORTER` names; raises TracingConfigError on a bad name."""
    names = [n.strip() for n in environ.get(EXPORTERS_VARIABLE, "none").split(",") if n.strip()]
    unknown = [name for name in names if name not in EXPORTER_NAMES]
    if unknown:
        raise TracingConfigError(
            f"{EXPORTERS_VARIABLE}={','.join(unknown)} is not supported: use "
            f"{', '.join(EXPORTER_NAMES)}"
        )
    exporters: list[SpanExporter] = []
    for name in dict.fromkeys(names):
        if name == "otlp":
            exporters.append(_otlp_exporter(environ))
        elif name == "console":
            exporters.append(ConsoleSpanExporter(service_name=None))
    return exporters


class Tracing:
    """One service's tracer provider, and the interceptors that use it."""

    def __init__(self, service_name: str, exporters: Sequence[SpanExporter] | None = None) -> None:
        chosen = exporters_from_environment() if exporters is None else list(exporters)
        self.provider: trace.TracerProvider
        if chosen:
            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
            for exporter in chosen:
                provider.add_span_processor(BatchSpanProcessor(exporter))
            self.provider = provider
        else:
            self.provider = trace.NoOpTracerProvider()
        self.tracer = self.provider.get_tracer("dragoman")

    @property
    def enabled(self) -> bool:
        return isinstance(self.provider, TracerProvider)

    def server_interceptor(self) -> grpc.aio.ServerInterceptor:
        return aio_server_interceptor(tracer_provider=self.provider)

    def client_interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        return aio_client_interceptors(tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Exports what is left; called once the service has stopped."""
        if isinstance(self.provider, TracerProvider):
            self.provider.shutdown()
