"""Dragoman: real-time speech recognition and translation over gRPC."""

__version__ = "0.1.0"
