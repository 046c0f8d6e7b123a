"""Channels from the gateway to its backends, balanced and retried by gRPC itself.

Each backend target may resolve to several replicas (`dns:///stt:50052`); `round_robin`
spreads calls over those that report SERVING and the retry policy moves a call that never
reached a replica to another, so failover needs no code of ours.
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from dragoman.serving import channel_options


def service_config(service: str) -> str:
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            # gRPC's client-side health checking: a replica that is loading its model or
            # draining (NOT_SERVING) gets no new calls while others serve.
            "healthCheckConfig": {"serviceName": service},
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
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:
    """`interceptors` are the tracing ones: they carry the caller's trace to the backend;
    `credentials` make it TLS (None: plaintext)."""
    options = [
        *channel_options(max_message_bytes),
        ("grpc.service_config", service_config(service)),
        ("grpc.enable_retries", 1),
        # A call is retried from a copy of its request; keep room for the largest one, or
        # a long utterance's final would not be retried when its replica dies.
        ("grpc.per_rpc_retry_buffer_size", max_message_bytes),
    ]
    if credentials is not None:
        return grpc.aio.secure_channel(
            target, credentials, options=options, interceptors=list(interceptors)
        )
    return grpc.aio.insecure_channel(target, options=options, interceptors=list(interceptors))


class BackendClient:
    """A client of one backend service, over one channel for all streams; a subclass names
    the service and its stub class."""

    service_name: str
    stub_class: Callable[[grpc.aio.Channel], Any]

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float,
        max_message_bytes: int,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.target = target
        self._timeout_s = timeout_s
        self._channel = open_channel(
            target,
            self.service_name,
            max_message_bytes=max_message_bytes,
            interceptors=interceptors,
            credentials=credentials,
        )
        self._stub = self.stub_class(self._channel)

    async def close(self) -> None:
        await self._channel.close()
