"""The translation service's lifecycle and contract over real gRPC, with Bergamot."""

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from dragoman.api.translate.v1 import translate_pb2
from dragoman.interfaces import TRANSLATE_SERVICE_NAME
from dragoman.translate.app import TranslateApp
from dragoman.translate.backends import load_backend
from dragoman.translate.backends.base import BackendError
from dragoman.translate.batcher import Batcher
from tests.gates import HOLD_TIMEOUT_S, GatedBackend, GatedLoader
from tests.translate.conftest import Replica, running, settings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_health_is_not_serving_until_the_backends_load(loop_thread) -> None:
    app = TranslateApp(settings())
    port = loop_thread.run(app.start())
    try:
        with grpc.insecure_channel(app.address) as channel:
            replica = Replica(app, channel)
            before = replica.health()
            with pytest.raises(grpc.RpcError) as loading:
                replica.translate(["Hello."], "en", "pt")
            loop_thread.run(app.wait_ready())
            after = replica.health()
            translated = replica.translate(["Hello."], "en", "pt")
    finally:
        loop_thread.run(app.stop())

    assert port > 0
    assert app.address == f"127.0.0.1:{port}"
    assert (before, after) == (NOT_SERVING, SERVING)
    assert loading.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not serving: bergamot (loading)" in loading.value.details()
    assert list(translated.translations) == ["Olá."]


def test_backend_that_fails_to_load_keeps_the_replica_out_of_service(
    loop_thread, tmp_path: Path
) -> None:
    app = TranslateApp(
        settings(backends="bergamot,transformers", transformers_models=str(tmp_path))
    )
    loop_thread.run(app.start())
    try:
        with pytest.raises(BackendError, match="cannot load transformers model"):
            loop_thread.run(app.wait_ready())
        with grpc.insecure_channel(app.address) as channel:
            replica = Replica(app, channel)
            health = replica.health()
            with pytest.raises(grpc.RpcError) as failed:
                replica.translate(["Hello."], "en", "pt", "transformers")
    finally:
        loop_thread.run(app.stop())

    assert health == NOT_SERVING
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "backend 'transformers' failed to load" in failed.value.details()


def test_reflection_lists_the_service(bergamot_replica: Replica) -> None:
    services = ProtoReflectionDescriptorDatabase(bergamot_replica.channel).get_services()

    assert TRANSLATE_SERVICE_NAME in services
    assert "grpc.health.v1.Health" in services


def test_lists_the_served_pairs(bergamot_replica: Replica) -> None:
    response = bergamot_replica.stub.ListLanguagePairs(translate_pb2.ListLanguagePairsRequest())

    assert [
        (pair.source_language_code, pair.target_language_code, pair.backend)
        for pair in response.pairs
    ] == [("en", "pt", "bergamot"), ("pt", "en", "bergamot")]


def test_unserved_pair_names_the_served_pairs(bergamot_replica: Replica) -> None:
    with pytest.raises(grpc.RpcError) as error:
        bergamot_replica.translate(["Hola."], "es", "de")

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == (
        "no backend translates es→de; served pairs: en→pt (bergamot), pt→en (bergamot)"
    )


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            translate_pb2.TranslateRequest(source_language_code="en", target_language_code="pt"),
            "texts is empty",
        ),
        (
            translate_pb2.TranslateRequest(texts=["Hi."] * 65, source_language_code="en"),
            "65 texts in one request; at most 64",
        ),
        (
            translate_pb2.TranslateRequest(
                texts=["x" * 2001], source_language_code="en", target_language_code="pt"
            ),
            "texts[0] has 2001 characters; at most 2000",
        ),
        (
            translate_pb2.TranslateRequest(texts=["Hi."], target_language_code="pt"),
            "source_language_code: unknown language code ''",
        ),
        (
            translate_pb2.TranslateRequest(
                texts=["Hi."], source_language_code="en", target_language_code="EN"
            ),
            "source and target language are both 'en'",
        ),
        (
            translate_pb2.TranslateRequest(
                texts=["Hi."],
                source_language_code="en",
                target_language_code="pt",
                backend="transformers",
            ),
            "unknown backend 'transformers'; this replica serves: bergamot",
        ),
    ],
)
def test_bad_requests_get_a_helpful_message(
    bergamot_replica: Replica, request_: translate_pb2.TranslateRequest, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        bergamot_replica.stub.Translate(request_)

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()


def test_region_subtags_are_accepted(bergamot_replica: Replica) -> None:
    response = bergamot_replica.translate(["Bom dia."], "pt-BR", "en-US")

    assert list(response.translations) == ["Good morning."]


@pytest.fixture
def gated_replica(loop_thread) -> Iterator[tuple[Replica, GatedBackend]]:
    """Room for one waiting request, in front of Bergamot held at a gate: the first request
    holds the worker until the test opens the gate, so the next one waits in the queue and
    the one after that finds it full, on a machine of any speed."""
    loader = GatedLoader(load_backend, GatedBackend)
    replicas = running(loop_thread, TranslateApp(settings(max_queue=1), load=loader))
    replica = next(replicas)
    [backend] = loader.loaded
    try:
        yield replica, backend
    finally:
        backend.gate.set()
        replicas.close()


def _request(text: str) -> translate_pb2.TranslateRequest:
    return translate_pb2.TranslateRequest(
        texts=[text], source_language_code="en", target_language_code="pt"
    )


def _wait_until_queued(loop_thread, batcher: Batcher, count: int) -> None:
    async def queued() -> int:
        return batcher.queued

    deadline_s = time.monotonic() + 5
    while (now := loop_thread.run(queued())) != count:
        assert time.monotonic() < deadline_s, f"expected {count} requests queued, found {now}"
        time.sleep(0.005)


def _hold_the_worker(replica: Replica, backend: GatedBackend) -> grpc.Future:
    """A request that the model holds until the gate opens; later ones wait behind it."""
    held = replica.stub.Translate.future(_request("Good morning."))
    assert backend.entered.wait(HOLD_TIMEOUT_S), "the first request never reached the model"
    return held


def test_full_queue_is_resource_exhausted(
    loop_thread, gated_replica: tuple[Replica, GatedBackend]
) -> None:
    replica, backend = gated_replica
    held = _hold_the_worker(replica, backend)
    waiting = replica.stub.Translate.future(_request("Good afternoon."))
    _wait_until_queued(loop_thread, replica.app.batcher, 1)
    with pytest.raises(grpc.RpcError) as refused:
        replica.translate(["Good night."], "en", "pt")
    backend.gate.set()

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (
        f"expected the full queue's RESOURCE_EXHAUSTED, got {refused.value.code().name}: "
        f"{refused.value.details()}"
    )
    assert "the queue is full (1 requests waiting)" in refused.value.details(), (
        refused.value.details()
    )
    served = [list(held.result().translations), list(waiting.result().translations)]
    assert served == [["Bom dia."], ["Boa tarde."]], (
        f"the requests let in before the queue filled are still served: {served}"
    )


def test_requests_whose_caller_left_are_skipped(
    loop_thread, gated_replica: tuple[Replica, GatedBackend]
) -> None:
    replica, backend = gated_replica
    stats = replica.app.batcher.stats
    held = _hold_the_worker(replica, backend)
    abandoned = replica.stub.Translate.future(_request("Good evening."))
    _wait_until_queued(loop_thread, replica.app.batcher, 1)
    abandoned.cancel()
    _wait_until_queued(loop_thread, replica.app.batcher, 0)
    backend.gate.set()

    after = replica.translate(["Good afternoon."], "en", "pt")

    assert list(held.result().translations) == ["Bom dia."], held.result()
    assert list(after.translations) == ["Boa tarde."], after
    assert stats.skipped_cancelled == 1, (
        f"expected the abandoned request skipped, {stats.skipped_cancelled} skipped"
    )
    assert stats.completed == 2, (
        f"expected the held and the later request run, not the abandoned one: {stats}"
    )
