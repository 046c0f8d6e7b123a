"""Seconds to and from protobuf Durations, the unit of every offset and latency on the wire.

Here, beside the services rather than in one of them, because the gateway, the STT service
and the translation service all put times on the wire, and no service imports another.
"""

from google.protobuf import duration_pb2


def seconds(value: duration_pb2.Duration) -> float:
    return value.ToNanoseconds() / 1e9


def duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(round(max(seconds, 0.0) * 1e9))
    return value
