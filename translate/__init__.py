"""The translation service: text translation backends behind gRPC, with micro-batching."""

from translate.app import TranslateApp, serve
from translate.backends.base import BackendError, TranslationBackend
from translate.settings import TranslateSettings

__all__ = ["BackendError", "TranslateApp", "TranslateSettings", "TranslationBackend", "serve"]
