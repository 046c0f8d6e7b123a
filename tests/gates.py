"""Real models behind a gate that the test opens: a model call is held until then, so a
test forces the order of events (a call in flight, a queue full behind it) instead of
hoping that the machine is slow enough to produce it.

The gate sits inside the worker's model call, below everything of ours: the queue, the
servicer and gRPC all run as in production, and the model still computes the answer.
"""

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from dragoman.stt.engine import TranscribeOptions, Transcription, WhisperEngine
from dragoman.translate.backends import TranslationBackend

HOLD_TIMEOUT_S = 60.0
"""A call the test never lets through goes on after this, so that a broken test ends."""
S = TypeVar("S")
M = TypeVar("M")
G = TypeVar("G")


class _Gated:
    """`entered` is set by the first call to reach the gate; calls wait for `gate`."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()

    def _pass(self) -> None:
        self.entered.set()
        self.gate.wait(HOLD_TIMEOUT_S)


class GatedBackend(_Gated):
    """A translation backend whose translations wait for the gate."""

    def __init__(self, backend: TranslationBackend) -> None:
        super().__init__()
        self.name = backend.name
        self._backend = backend

    def pairs(self) -> list[tuple[str, str]]:
        return self._backend.pairs()

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        self._pass()
        return self._backend.translate(texts, source, target)


class GatedEngine(_Gated):
    """A Whisper model whose model calls wait for the gate."""

    def __init__(self, engine: WhisperEngine) -> None:
        super().__init__()
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        """All but the model call is the engine's own: its name, checks and batch keys."""
        return getattr(self._engine, name)

    def transcribe_batch(
        self, requests: Sequence[tuple[np.ndarray, TranscribeOptions]]
    ) -> list[Transcription]:
        self._pass()
        return self._engine.transcribe_batch(requests)


class GatedLoader(Generic[S, M, G]):
    """A replica's `load`: loads each model as production does, behind a gate of its own;
    `loaded` holds the gated ones, in the order the replica loaded them."""

    def __init__(self, load: Callable[[str, S], M], gated: Callable[[M], G]) -> None:
        self._load = load
        self._gated = gated
        self.loaded: list[G] = []

    def __call__(self, name: str, settings: S) -> G:
        self.loaded.append(self._gated(self._load(name, settings)))
        return self.loaded[-1]
