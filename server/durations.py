"""Seconds to and from protobuf Durations, the unit of every offset and latency on the wire."""

from google.protobuf import duration_pb2


def seconds(value: duration_pb2.Duration) -> float:
    return value.ToNanoseconds() / 1e9


def duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(max(seconds, 0.0) * 1e9))
    return value
