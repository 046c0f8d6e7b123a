"""SHA-256 checks of pinned model weights, shared by every service that ships models.

A corrupted or swapped weights file must fail loudly at load time, naming the file, both
digests and what to do, rather than produce wrong text later.
"""

import hashlib
from collections.abc import Mapping
from pathlib import Path


def sha256_of(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def check_digest(
    path: Path, actual: str, expected: str, *, remedy: str, error: type[Exception]
) -> None:
    if actual != expected:
        raise error(
            f"{path} is corrupted or not the pinned version: sha256 {actual}, "
            f"expected {expected}; {remedy}"
        )


def verify_checksums(
    directory: Path, expected_sha256: Mapping[str, str], *, remedy: str, error: type[Exception]
) -> None:
    """Checks each named file of `directory` against its expected sha256 hex digest."""
    for file_name, expected in expected_sha256.items():
        path = directory / file_name
        if not path.is_file():
            raise error(f"{path} is missing; expected sha256 {expected}; {remedy}")
        check_digest(path, sha256_of(path), expected, remedy=remedy, error=error)
