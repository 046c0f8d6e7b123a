"""Fixtures for the STT service: real clips, the real tiny.en model loaded once per session."""

import re
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dragoman.stt import models
from dragoman.stt.engine import WhisperEngine

SPEECH = Path(__file__).parents[1] / "data" / "speech"


def read_pcm16(path: Path) -> bytes:
    """The clip's samples as the wire carries them; only 16 kHz mono clips are used here."""
    with wave.open(str(path)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (16000, 1, 2)
        return clip.readframes(clip.getnframes())


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def _word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over lower-cased words without punctuation, per reference word."""
    ref, hyp = _words(reference), _words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
            )
        previous = current
    return previous[-1] / len(ref)


@pytest.fixture(scope="session")
def word_error_rate() -> Callable[[str, str], float]:
    return _word_error_rate


@pytest.fixture(scope="session")
def jfk_pcm16() -> bytes:
    return read_pcm16(SPEECH / "en" / "jfk.wav")


@pytest.fixture(scope="session")
def jfk_audio(jfk_pcm16: bytes) -> np.ndarray:
    return np.frombuffer(jfk_pcm16, dtype="<i2").astype(np.float32) / 32768.0


@pytest.fixture(scope="session")
def jfk_reference(manifest: list[dict]) -> str:
    return next(clip["text"] for clip in manifest if clip["file"] == "en/jfk.wav")


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_engine(model_cache_dir: Path) -> WhisperEngine:
    return WhisperEngine(models.prepare("tiny.en", model_cache_dir), device="cpu")
