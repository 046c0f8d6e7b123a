"""The STT service: Whisper models behind gRPC, with a priority queue in front of them."""
