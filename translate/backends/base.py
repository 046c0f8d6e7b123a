"""What the service needs from a translation engine, so engines plug in without touching it."""

from typing import Protocol


class BackendError(Exception):
    """A backend cannot load, or broke its contract; the message says why."""


class TranslationBackend(Protocol):
    """A loaded engine. Calls come from one worker thread per backend, never concurrently,
    so an implementation may keep per-call state (a tokenizer's source language)."""

    #: The name requests use to pick the backend ("bergamot").
    name: str

    def pairs(self) -> list[tuple[str, str]]:
        """(source, target) ISO 639-1 pairs served, fixed once loaded."""
        ...

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        """One translation per text, in order; blocks for the whole batch."""
        ...
