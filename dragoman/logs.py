"""Structured logging with the stream's session and segment ids on every line.

The ids live in context variables: each gRPC stream runs in its own task, so whatever a
stream logs, from any module, carries its ids without passing them around; the trace id
comes the same way from OpenTelemetry's context, so a log line leads to its trace.
"""

import contextvars
import json
import logging
import sys
import time

from opentelemetry import trace

session_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("session_id", default="")
segment_id_var: contextvars.ContextVar[int] = contextvars.ContextVar("segment_id", default=0)

_CONTEXT_FIELDS = ("session_id", "segment_id")


class _ContextFilter(logging.Filter):
    """Adds the stream's ids, and the trace and span ids of the current span, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            record.session_id = session_id_var.get()
        if not hasattr(record, "segment_id"):
            record.segment_id = segment_id_var.get()
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else ""
        record.span_id = format(span.span_id, "016x") if span.is_valid else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    _STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in self._STANDARD and value not in ("", 0, None)
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines with the ids appended when a stream is in context."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(
            f"{key}={getattr(record, key)}" for key in _CONTEXT_FIELDS if getattr(record, key, None)
        )
        return f"{line} [{ids}]" if ids else line


def configure(level: str = "INFO", json_lines: bool = False) -> None:
    """Sets up the root logger; called once by the entry point, never by library code."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # faster-whisper logs every window it processes at INFO; the STT service logs each job.
    logging.getLogger("faster_whisper").setLevel(max(root.level, logging.WARNING))
