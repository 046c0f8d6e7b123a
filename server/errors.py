"""Domain errors of the gateway and the one place that maps them to gRPC status codes."""

import grpc


class GatewayError(Exception):
    """An error the client must hear about; `code` is the gRPC status it gets."""

    code = grpc.StatusCode.INTERNAL


class InvalidRequestError(GatewayError):
    """Bad config, bad message order, bad audio: the client must change its request."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class BackendUnavailableError(GatewayError):
    """No speech-to-text replica answered."""

    code = grpc.StatusCode.UNAVAILABLE


class PermissionDeniedError(GatewayError):
    """The caller's token does not reach what the request names (a caption room)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class StreamLimitError(GatewayError):
    """The stream went on too long, or its audio stopped for too long."""

    code = grpc.StatusCode.OUT_OF_RANGE


class DrainingError(GatewayError):
    """The gateway is shutting down; the client should reconnect (to another replica)."""

    code = grpc.StatusCode.UNAVAILABLE


class OverloadedError(GatewayError):
    """The backends are saturated; the message says when to retry."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


def from_backend(error: grpc.aio.AioRpcError, backend: str) -> GatewayError:
    """Translates a backend's status into what the client should be told."""
    code = error.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidRequestError(error.details() or "the request was rejected by the backend")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return OverloadedError(
            f"the {backend} service is overloaded ({error.details()}); retry in a few seconds"
        )
    return BackendUnavailableError(
        f"the {backend} service did not answer ({code.name}: {error.details()}); "
        "check that it is running and reachable"
    )


class ClientGoneError(GatewayError):
    """The client went away without ending its audio: what is in progress is dropped."""

    code = grpc.StatusCode.CANCELLED
