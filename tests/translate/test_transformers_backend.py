"""The transformers backend on a tiny random Marian model: plumbing, not quality."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from dragoman.translate.backends.base import BackendError
from dragoman.translate.backends.transformers_backend import TransformersBackend, resolve_device
from tests.translate.conftest import Replica

TEXTS = [
    "The cat sees a book today.",
    "Hello.",
    "My sister cooks warm soup before lunch.",
    "Fish.",
    "The doctor reads quiet music near the river.",
]


@pytest.fixture(scope="module")
def backend(tiny_marian_dir: Path) -> TransformersBackend:
    return TransformersBackend([str(tiny_marian_dir)], "cpu")


def test_languages_come_from_the_name_and_the_target_tokens(backend: TransformersBackend) -> None:
    assert backend.pairs() == [("en", "pt"), ("en", "es")]


def test_one_output_per_input_whatever_the_batch(backend: TransformersBackend) -> None:
    batched = backend.translate(TEXTS, "en", "pt")
    alone = [backend.translate([text], "en", "pt")[0] for text in TEXTS]

    assert batched == alone
    assert len(set(batched)) > 1


def test_auto_device_is_cpu_without_a_gpu() -> None:
    assert resolve_device("auto") == "cpu"


def test_a_directory_without_a_model_fails_to_load(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot load transformers model"):
        TransformersBackend([str(tmp_path)], "cpu")


def test_keeps_order_over_grpc(marian_replica: Replica, backend: TransformersBackend) -> None:
    response = marian_replica.translate(TEXTS, "en", "es")

    assert response.backend == "transformers"
    assert list(response.translations) == backend.translate(TEXTS, "en", "es")


def test_concurrent_requests_share_a_batch(marian_replica: Replica) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(
            pool.map(
                lambda text: marian_replica.translate([text], "en", "pt", "transformers"), TEXTS
            )
        )

    assert [len(response.translations) for response in responses] == [1] * len(TEXTS)
    assert max(response.batch_size for response in responses) > 1
    assert all(response.HasField("queue_duration") for response in responses)


def test_default_backend_is_the_first_that_serves_the_pair(marian_replica: Replica) -> None:
    assert marian_replica.translate(["Hello."], "en", "pt").backend == "bergamot"
    assert marian_replica.translate(["Hello."], "en", "es").backend == "transformers"


@pytest.mark.parametrize(
    ("texts", "source", "target", "backend", "message"),
    [
        (["Hello."] * 11, "en", "pt", "", "11 texts in one request; at most 10"),
        (["x" * 101], "en", "pt", "", "texts[0] has 101 characters; at most 100"),
        (["Hello.", " "], "en", "pt", "", "texts[1] is empty"),
        (["Hello."], "en", "xx", "", "target_language_code: unknown language code 'xx'"),
        (
            ["Hello."],
            "pt",
            "en",
            "transformers",
            "backend transformers does not translate pt→en; served pairs: en→pt (bergamot), "
            "pt→en (bergamot), en→pt (transformers), en→es (transformers)",
        ),
        (["Hello."], "en", "pt", "marian", "unknown backend 'marian'; this replica serves: "),
    ],
)
def test_bad_requests_are_invalid_arguments(
    marian_replica: Replica, texts: list[str], source: str, target: str, backend: str, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        marian_replica.translate(texts, source, target, backend)

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()
