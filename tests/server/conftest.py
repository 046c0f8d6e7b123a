import pytest

from server.vad import SileroModel


@pytest.fixture(scope="module")
def model() -> SileroModel:
    return SileroModel()
