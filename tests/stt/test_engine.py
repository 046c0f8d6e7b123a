from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dragoman.stt import models
from dragoman.stt.engine import TranscribeOptions, UnsupportedOptionError, WhisperEngine


def test_transcribes_jfk_close_to_the_reference(
    tiny_engine: WhisperEngine,
    jfk_audio: np.ndarray,
    jfk_reference: str,
    word_error_rate: Callable[[str, str], float],
) -> None:
    result = tiny_engine.transcribe(jfk_audio, TranscribeOptions(beam_size=5))

    assert word_error_rate(jfk_reference, result.text) < 0.2
    assert (result.language, result.language_probability) == ("en", 1)
    segment = result.segments[0]
    assert segment.no_speech_prob < 0.5
    assert segment.avg_logprob > -1
    assert 0 < segment.compression_ratio < 2.4
    assert segment.words == ()


def test_word_timestamps_are_ordered_inside_the_audio(
    tiny_engine: WhisperEngine, jfk_audio: np.ndarray
) -> None:
    result = tiny_engine.transcribe(
        jfk_audio, TranscribeOptions(beam_size=1, temperatures=(0.0,), word_timestamps=True)
    )

    words = [word for segment in result.segments for word in segment.words]
    assert [w.word.strip(",. ") for w in words[:3]] == ["And", "so", "my"]
    starts = [w.start_s for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w.start_s <= w.end_s <= 11.1 and 0 <= w.probability <= 1 for w in words)


def test_reports_where_it_runs(tiny_engine: WhisperEngine) -> None:
    assert tiny_engine.device == "cpu"
    assert tiny_engine.compute_type.startswith("int8")
    assert tiny_engine.english_only == models.PINNED_MODELS["tiny.en"].english_only
    assert tiny_engine.languages == ("en",)


def test_english_only_model_rejects_other_languages(
    tiny_engine: WhisperEngine, jfk_audio: np.ndarray
) -> None:
    with pytest.raises(UnsupportedOptionError, match=r"does not know language .es.*: en"):
        tiny_engine.transcribe(jfk_audio, TranscribeOptions(language="es"))


def test_english_only_model_rejects_translation(tiny_engine: WhisperEngine) -> None:
    with pytest.raises(UnsupportedOptionError, match="English-only and cannot translate"):
        tiny_engine.check(TranscribeOptions(task="translate"))


@pytest.mark.base_model
def test_base_detects_the_language_and_transcribes(
    model_cache_dir: Path,
    jfk_audio: np.ndarray,
    jfk_reference: str,
    word_error_rate: Callable[[str, str], float],
) -> None:
    engine = WhisperEngine(models.prepare("base", model_cache_dir), device="cpu")

    result = engine.transcribe(jfk_audio, TranscribeOptions(beam_size=1, temperatures=(0.0,)))

    assert result.language == "en"
    assert result.language_probability > 0.5
    assert word_error_rate(jfk_reference, result.text) < 0.2
    engine.check(TranscribeOptions(language="es", task="translate"))
