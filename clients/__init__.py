"""Dragoman clients: the command-line transcriber and the benchmark."""
