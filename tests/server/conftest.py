import pytest

from dragoman.gateway.vad import SileroModel


@pytest.fixture(scope="module")
def model() -> SileroModel:
    return SileroModel()
