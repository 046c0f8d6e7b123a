"""A replica's load states: what a call naming a worker that is not ready is told, and the
gauge an operator reads, which must agree."""

import grpc
import pytest
from prometheus_client import CollectorRegistry

from dragoman.loading import LoadStates, WorkerUnavailableError
from dragoman.metrics import Metrics, WorkMetrics


@pytest.fixture
def metrics() -> Metrics:
    return Metrics("stt")


@pytest.fixture
def states(metrics: Metrics) -> LoadStates:
    return LoadStates(["tiny.en", "base"], WorkMetrics(metrics, "model"))


def _state(registry: CollectorRegistry, model: str) -> str:
    [state] = [
        each
        for each in ("loading", "ready", "failed")
        if registry.get_sample_value("dragoman_stt_model_state", {"model": model, "state": each})
    ]
    return state


def test_every_worker_starts_loading(states: LoadStates, metrics: Metrics) -> None:
    with pytest.raises(WorkerUnavailableError, match="model 'base' is still loading; retry"):
        states.check_ready("base")
    assert states.not_ready() == {"tiny.en": "loading", "base": "loading"}
    assert _state(metrics.registry, "base") == "loading"


def test_a_ready_worker_serves_and_a_failed_one_is_refused_with_its_load_error(
    states: LoadStates, metrics: Metrics
) -> None:
    states.ready("tiny.en")
    states.failed("base", RuntimeError("no model.bin"))

    states.check_ready("tiny.en")
    with pytest.raises(WorkerUnavailableError) as refused:
        states.check_ready("base")
    assert str(refused.value) == "model 'base' failed to load on this replica: no model.bin"
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert states.not_ready() == {"base": "failed"}
    assert [_state(metrics.registry, m) for m in states.names] == ["ready", "failed"]
