"""The STT service: Whisper models behind gRPC, with a priority queue in front of them."""

from stt.app import SttApp, serve
from stt.engine import TranscribeOptions, Transcription, WhisperEngine
from stt.settings import SttSettings

__all__ = ["SttApp", "SttSettings", "TranscribeOptions", "Transcription", "WhisperEngine", "serve"]
