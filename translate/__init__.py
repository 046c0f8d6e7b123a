"""The translation service: text translation backends behind gRPC, with micro-batching."""
