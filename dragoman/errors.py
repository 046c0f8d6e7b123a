"""The errors every service answers alike, each naming the gRPC status its caller gets.

A service refuses a bad request the same way whichever it is, and the gateway relays its
backends' refusals to its own clients: one class per kind of refusal keeps the status and
its meaning the same on both sides of a call.
"""

import grpc


class StatusError(Exception):
    """An error the caller must hear about; `code` is the gRPC status it gets."""

    code = grpc.StatusCode.INTERNAL


class InvalidRequestError(StatusError):
    """The request itself is wrong (a config, audio, a name, an enum value, the order of
    messages): sent again unchanged it fails again, so the message says what to change."""

    code = grpc.StatusCode.INVALID_ARGUMENT
