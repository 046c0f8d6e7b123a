"""Channels from the gateway to its backends, balanced and retried by gRPC itself.

Each backend target may resolve to several replicas (`dns:///stt:50052`); `round_robin`
spreads calls over those that report SERVING and the retry policy moves a call that never
reached a replica to another, so failover needs no code of ours.
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc.aio import ClientCallDetails, UnaryUnaryCall

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


class CancelOnCancel(grpc.aio.UnaryUnaryClientInterceptor):
    """Makes cancelling the caller cancel the call, by awaiting it innermost.

    OpenTelemetry's aio client interceptor awaits `call.code()`, which a cancellation does
    not forward to the call (opentelemetry-python-contrib#3271): a stream that ended, or
    an interim that went stale, left its STT or translation call running on the replica
    until the call's own deadline. Awaited here, below every other interceptor, the call
    is what a cancellation reaches, and gRPC cancels it on the wire."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[ClientCallDetails, Any], Any],
        client_call_details: ClientCallDetails,
        request: Any,
    ) -> UnaryUnaryCall:
        call = await continuation(client_call_details, request)
        await call
        return call


def open_channel(
    target: str,
    service: str,
    *,
    max_message_bytes: int,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    credentials: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:
    """`interceptors` are the tracing ones: they carry the caller's trace to the backend;
    `credentials` make it TLS (None: plaintext). Cancelling a call's caller cancels the
    call (`CancelOnCancel`)."""
    options = [
        *channel_options(max_message_bytes),
        ("grpc.service_config", service_config(service)),
        ("grpc.enable_retries", 1),
        # A call is retried from a copy of its request; keep room for the largest one, or
        # a long utterance's final would not be retried when its replica dies.
        ("grpc.per_rpc_retry_buffer_size", max_message_bytes),
    ]
    chain = [*interceptors, CancelOnCancel()]
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, options=options, interceptors=chain)
    return grpc.aio.insecure_channel(target, options=options, interceptors=chain)


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

    def connect(self) -> None:
        """Starts connecting now rather than at the first call, so that the first stream
        does not wait for a connection and the channel's health watch on each replica (one
        long-lived call per replica) exists before any stream, not from whichever stream
        happened to call first."""
        self._channel.get_state(try_to_connect=True)

    async def close(self) -> None:
        await self._channel.close()
