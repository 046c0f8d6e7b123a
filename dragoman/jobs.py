"""The record every model job leaves: one latency log line, its metrics, and its spans.

The STT and translation services both queue jobs in front of models; an operator reads
the same fields for both: where the time went (queue wait, model run, total), on a log
line (the `job` field of JSON logs), in Prometheus histograms, and as two child spans of
the call's server span, so that a trace shows a slow final was waiting, not computing.
"""

import logging
import time

from opentelemetry import trace

from dragoman.metrics import WorkMetrics

logger = logging.getLogger(__name__)


def record_job(
    metrics: WorkMetrics,
    tracer: trace.Tracer,
    *,
    worker: str,
    kind: str,
    queue_s: float,
    run_s: float,
    batch_size: int,
    **details: str | int | float,
) -> None:
    """Records a job that has just finished."""
    metrics.completed(worker, kind, queue_s=queue_s, run_s=run_s, batch_size=batch_size)
    fields: dict[str, str | int | float] = {
        "worker": worker,
        "kind": kind,
        "queue_s": round(queue_s, 4),
        "run_s": round(run_s, 4),
        "total_s": round(queue_s + run_s, 4),
        "batch_size": batch_size,
        **details,
    }
    server_span = trace.get_current_span()
    server_span.set_attributes({f"dragoman.job.{key}": value for key, value in fields.items()})
    ended_ns = time.time_ns()
    run_started_ns = ended_ns - int(run_s * 1e9)
    queued_ns = run_started_ns - int(queue_s * 1e9)
    tracer.start_span("queue", start_time=queued_ns).end(end_time=run_started_ns)
    run = tracer.start_span("model", start_time=run_started_ns)
    run.set_attributes({"dragoman.worker": worker, "dragoman.batch_size": batch_size})
    run.end(end_time=ended_ns)
    logger.info(
        "job done: %s",
        " ".join(f"{key}={value}" for key, value in fields.items()),
        extra={"job": fields},
    )
