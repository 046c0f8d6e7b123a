"""Domain errors of the gateway, each naming the gRPC status its client gets, and the one
place that turns a backend's status into one of them."""

import grpc

from dragoman.errors import InvalidRequestError, StatusError


class BackendUnavailableError(StatusError):
    """A backend service (speech-to-text, translation) did not answer, or none is
    configured: the client may retry later, or do without what it serves."""

    code = grpc.StatusCode.UNAVAILABLE


class PermissionDeniedError(StatusError):
    """The caller's token does not reach what the request names (a caption room)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class StreamLimitError(StatusError):
    """The stream went on too long, or its audio stopped for too long."""

    code = grpc.StatusCode.OUT_OF_RANGE


class DrainingError(StatusError):
    """The gateway is shutting down; the client should reconnect (to another replica)."""

    code = grpc.StatusCode.UNAVAILABLE


class OverloadedError(StatusError):
    """This gateway or its backends have no room for the request now (`max_streams`, a full
    STT queue); the message says when to retry."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


def from_backend(error: grpc.aio.AioRpcError, backend: str) -> StatusError:
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


class ClientGoneError(StatusError):
    """The client went away without ending its audio: what is in progress is dropped."""

    code = grpc.StatusCode.CANCELLED


def internal_error(session_id: str) -> str:
    """What a client is told of a bug: where to find it, not what it was."""
    return f"internal error in session {session_id}; it is logged, please report it"
