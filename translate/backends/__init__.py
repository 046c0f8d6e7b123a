"""Translation engines behind one `TranslationBackend` protocol, loaded by name.

Each backend's module is imported only when that backend is configured, so a replica
serving Bergamot alone never imports torch.
"""

from dragoman.translate.backends.base import BackendError, TranslationBackend
from dragoman.translate.settings import BACKEND_NAMES, TranslateSettings

__all__ = ["BackendError", "TranslationBackend", "load_backend"]


def load_backend(name: str, settings: TranslateSettings) -> TranslationBackend:
    """Loads one backend; blocking (reads and verifies weights), raises BackendError."""
    if name == "bergamot":
        from dragoman.translate.backends.bergamot import BergamotBackend

        return BergamotBackend()
    if name == "transformers":
        from dragoman.translate.backends.transformers_backend import TransformersBackend

        return TransformersBackend(settings.transformers_model_names, settings.device)
    raise BackendError(f"unknown backend {name!r}; expected one of: {', '.join(BACKEND_NAMES)}")
