"""Which of a replica's workers (the STT service's models, the translation service's
backends) are loading, ready or failed, and why one failed.

A replica binds its port before its workers load, so a call may name a worker that is not
ready. It gets UNAVAILABLE, which a caller retries elsewhere or later, with what an operator
needs: still loading (retry shortly), or the load error that must be fixed. The same state
is the `<worker>_state` gauge, so the refusals and the metrics never disagree.
"""

import logging
from collections.abc import Sequence

import grpc

from dragoman.errors import StatusError
from dragoman.metrics import WorkerState, WorkMetrics

logger = logging.getLogger(__name__)


class WorkerUnavailableError(StatusError):
    """A worker configured on this replica is still loading or failed to load: another
    replica, or this one shortly, may serve the call."""

    code = grpc.StatusCode.UNAVAILABLE


class LoadStates:
    """The load state of each worker a replica is configured with, in the configured order;
    every one starts loading."""

    def __init__(self, names: Sequence[str], metrics: WorkMetrics) -> None:
        self.names = list(names)
        self._metrics = metrics
        self._states: dict[str, WorkerState] = {}
        self._failures: dict[str, str] = {}
        for name in self.names:
            self._set(name, "loading")

    def ready(self, name: str) -> None:
        self._set(name, "ready")

    def failed(self, name: str, error: Exception) -> None:
        """Keeps the load error for the UNAVAILABLE message of every call that names it."""
        logger.error("%s %s failed to load: %s", self._metrics.worker, name, error)
        self._failures[name] = str(error)
        self._set(name, "failed")

    def check_ready(self, name: str) -> None:
        """Raises WorkerUnavailableError unless the configured worker `name` is ready."""
        if self._states[name] == "failed":
            raise WorkerUnavailableError(
                f"{self._metrics.worker} {name!r} failed to load on this replica: "
                f"{self._failures[name]}"
            )
        if self._states[name] == "loading":
            raise WorkerUnavailableError(
                f"{self._metrics.worker} {name!r} is still loading; retry shortly"
            )

    def not_ready(self) -> dict[str, WorkerState]:
        """The workers not serving, in the configured order, with their state."""
        return {name: state for name, state in self._states.items() if state != "ready"}

    def _set(self, name: str, state: WorkerState) -> None:
        self._states[name] = state
        self._metrics.set_state(name, state)
