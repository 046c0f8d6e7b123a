"""The Dragoman gateway: public gRPC service, audio front end, VAD and segmenter."""
