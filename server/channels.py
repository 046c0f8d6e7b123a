"""Channels from the gateway to its backends, balanced and retried by gRPC itself.

Each backend target may resolve to several replicas (`dns:///stt:50052`); `round_robin`
spreads calls over all of them and the retry policy moves a call that never reached a
replica to another, so failover needs no code of ours.
"""

import json
from collections.abc import Sequence

import grpc

from dragoman.serving import channel_options


def service_config(service: str) -> str:
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [{"service": service}],
                    "waitForReady": True,
                    "retryPolicy": {
                        "maxAttempts": 3,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


def open_channel(
    target: str,
    service: str,
    *,
    max_message_bytes: int,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """`interceptors` are the tracing ones: they carry the caller's trace to the backend."""
    return grpc.aio.insecure_channel(
        target,
        options=[
            *channel_options(max_message_bytes),
            ("grpc.service_config", service_config(service)),
            ("grpc.enable_retries", 1),
        ],
        interceptors=list(interceptors),
    )
