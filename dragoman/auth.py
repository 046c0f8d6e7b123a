"""Bearer-token authentication of the public API: static tokens and JWTs.

A token names what it may do with scopes: `recognize` (StreamingRecognize, Recognize and
the WebSocket bridge) and `captions` (StreamCaptions; `recognize` includes it). A token
without scopes may do everything. Refusals say only what the caller must do, never why a
token failed (expired, bad signature, unknown): that detail is logged, not returned.
Health checks and reflection stay open, so probes and grpcurl's `list` need no token.

A token may also be scoped to caption rooms: a JWT with a `rooms` claim, a static token
with a `rooms=` field. Each entry is a room name, or a prefix ending in `*` (`team-*`);
a token without rooms may enter any room. The room is in the request, not in the call's
method, so the service checks it with `Identity.may_enter` once it has read the request.
"""

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
from pydantic import Field

from dragoman.settings import SettingsError, SettingsGroup

logger = logging.getLogger(__name__)

RECOGNIZE = "recognize"
CAPTIONS = "captions"
ALL_SCOPES = frozenset({RECOGNIZE, CAPTIONS})
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
METHOD_SCOPES = {"StreamCaptions": CAPTIONS}
"""Methods that need less than `recognize`; every other method needs `recognize`."""
LEEWAY_S = 30
UNAUTHENTICATED_MESSAGE = "authentication required: send 'authorization: Bearer <token>'"
PERMISSION_DENIED_MESSAGE = "this token does not grant access to this method"
ROOM_ENTRY = re.compile(r"[A-Za-z0-9_-]{1,64}\*?|\*")
"""A room name, or a prefix of one followed by `*`."""


class AuthError(Exception):
    """A refused call; `code` is UNAUTHENTICATED or PERMISSION_DENIED."""

    def __init__(self, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code

    @property
    def public_message(self) -> str:
        if self.code == grpc.StatusCode.PERMISSION_DENIED:
            return PERMISSION_DENIED_MESSAGE
        return UNAUTHENTICATED_MESSAGE


@dataclass(frozen=True)
class Identity:
    """Who a token names and what it may do."""

    subject: str = ""
    scopes: frozenset[str] = ALL_SCOPES
    rooms: tuple[str, ...] | None = None
    """Room names and `prefix*` patterns the token may enter; None: every room."""

    def may_enter(self, room: str) -> bool:
        if self.rooms is None:
            return True
        return any(
            room.startswith(entry[:-1]) if entry.endswith("*") else room == entry
            for entry in self.rooms
        )

    def grants(self, scope: str) -> bool:
        return scope in self.scopes or (scope == CAPTIONS and RECOGNIZE in self.scopes)


ANYONE = Identity()
"""The caller when authentication is off."""


@dataclass(frozen=True)
class JwtKey:
    algorithm: str
    key: Any


class AuthSettings(SettingsGroup):
    """Who may call: bearer tokens from a file, JWTs signed with a shared secret or a key."""

    auth_tokens_file: str = Field(
        "",
        description="File of accepted bearer tokens, one per line: `<token> [scope,scope]` "
        "(scopes: recognize, captions; none: all)",
    )
    auth_jwt_hs256_secret_file: str = Field(
        "", description="File holding the HS256 secret that JWT bearer tokens are signed with"
    )
    auth_jwt_rs256_public_key_file: str = Field(
        "", description="PEM public key that RS256 JWT bearer tokens are signed with"
    )
    auth_jwt_audience: str = Field(
        "dragoman", description="The `aud` a JWT must carry; `exp` is required too"
    )
    auth_jwt_issuer: str = Field("", description="The `iss` a JWT must carry; empty: any")


class Authenticator:
    """Checks bearer tokens against a token file and JWT keys; built once at start-up."""

    def __init__(self, settings: AuthSettings) -> None:
        self._tokens = _read_tokens(settings.auth_tokens_file) if settings.auth_tokens_file else {}
        self._jwt_keys = []
        if settings.auth_jwt_hs256_secret_file:
            secret = _read(settings.auth_jwt_hs256_secret_file).strip()
            self._jwt_keys.append(JwtKey("HS256", secret))
        if settings.auth_jwt_rs256_public_key_file:
            self._jwt_keys.append(JwtKey("RS256", _read(settings.auth_jwt_rs256_public_key_file)))
        if self._jwt_keys and not settings.auth_jwt_audience:
            raise SettingsError("JWT authentication needs an audience (auth_jwt_audience)")
        self._audience = settings.auth_jwt_audience
        self._issuer = settings.auth_jwt_issuer or None

    @property
    def enabled(self) -> bool:
        return bool(self._tokens or self._jwt_keys)

    def check(self, authorization: str, scope: str) -> Identity:
        """The caller named by `authorization` ("Bearer <token>"); raises AuthError unless
        it grants `scope`."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, "no bearer token")
        identity = self._identify(token.strip())
        if not identity.grants(scope):
            raise AuthError(grpc.StatusCode.PERMISSION_DENIED, f"token lacks scope {scope}")
        return identity

    def identify(self, metadata: Mapping[str, Any] | None, scope: str) -> Identity:
        """The caller of a gRPC call (its scope already checked by AuthInterceptor);
        ANYONE when authentication is off."""
        if not self.enabled:
            return ANYONE
        return self.check(str(dict(metadata or ()).get("authorization", "")), scope)

    def _identify(self, token: str) -> Identity:
        for known, identity in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return identity
        reasons = []
        for key in self._jwt_keys:
            try:
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=[key.algorithm],
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=LEEWAY_S,
                    options={"require": ["exp", "aud"]},
                )
            except jwt.InvalidTokenError as error:
                reasons.append(f"{key.algorithm}: {error}")
                continue
            return _identity_of(claims)
        raise AuthError(
            grpc.StatusCode.UNAUTHENTICATED,
            "; ".join(reasons) or "unknown token",
        )


def _identity_of(claims: dict[str, Any]) -> Identity:
    scope = claims.get("scope")
    rooms = claims.get("rooms")
    if isinstance(rooms, str):
        rooms = [rooms]
    if rooms is not None and not (
        isinstance(rooms, list)
        and all(isinstance(r, str) and ROOM_ENTRY.fullmatch(r) for r in rooms)
    ):
        raise AuthError(
            grpc.StatusCode.UNAUTHENTICATED,
            f"claim 'rooms' must be a room name or a list of them (prefix* allowed): {rooms!r}",
        )
    return Identity(
        subject=str(claims.get("sub", "")),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else ALL_SCOPES,
        rooms=tuple(rooms) if rooms is not None else None,
    )


def _read(path: str) -> str:
    try:
        return Path(path).expanduser().read_text()
    except OSError as error:
        raise SettingsError(f"cannot read {path}: {error.strerror}") from None


def _read_tokens(path: str) -> dict[str, Identity]:
    """Lines of `<token> [scope,scope] [rooms=room,prefix*]`; blank lines and `#` comments
    are skipped."""
    tokens: dict[str, Identity] = {}
    for number, line in enumerate(_read(path).splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        scopes, rooms = ALL_SCOPES, None
        for field in fields[1:]:
            if field.startswith("rooms="):
                rooms = tuple(field.removeprefix("rooms=").split(","))
                bad = [room for room in rooms if not ROOM_ENTRY.fullmatch(room)]
                if bad:
                    raise SettingsError(
                        f"{path}:{number}: {', '.join(bad)} is not a room name or prefix*"
                    )
            else:
                scopes = frozenset(field.split(","))
                if not scopes <= ALL_SCOPES:
                    raise SettingsError(
                        f"{path}:{number}: unknown scope in {field!r}; use "
                        f"{', '.join(sorted(ALL_SCOPES))}"
                    )
        tokens[fields[0]] = Identity(scopes=scopes, rooms=rooms)
    if not tokens:
        raise SettingsError(f"{path} holds no token")
    return tokens


def method_scope(method: str) -> str:
    """The scope a full method name (`/pkg.Service/Method`) needs."""
    return METHOD_SCOPES.get(method.rsplit("/", 1)[-1], RECOGNIZE)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without a token that grants their method."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        metadata: Mapping[str, Any] = dict(handler_call_details.invocation_metadata or ())
        try:
            self._authenticator.check(str(metadata.get("authorization", "")), method_scope(method))
        except AuthError as error:
            logger.info("refused %s: %s", method, error)
            return _refusal(handler, error)
        return handler


def _refusal(handler: grpc.RpcMethodHandler, error: AuthError) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour replaced by an abort with the error's status (a
    coroutine serves every kind: streaming handlers may write instead of yielding)."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(error.code, error.public_message)

    kind = next(
        name
        for name in ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
        if getattr(handler, name) is not None
    )
    return handler._replace(**{kind: refuse})
