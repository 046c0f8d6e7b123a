"""Tokens scoped to rooms: what each form of the `rooms` claim and field lets in."""

import time

import grpc
import jwt
import pytest

from dragoman.auth import ANYONE, Authenticator, AuthError, AuthSettings, Identity
from dragoman.settings import SettingsError

SECRET = "a-secret-of-the-test-that-is-long-enough-for-hs256"


@pytest.fixture
def authenticator(tmp_path) -> Authenticator:
    (tmp_path / "tokens").write_text("a recognize rooms=standup,team-*\nb captions\n")
    (tmp_path / "secret").write_text(SECRET)
    return Authenticator(
        AuthSettings(
            auth_tokens_file=str(tmp_path / "tokens"),
            auth_jwt_hs256_secret_file=str(tmp_path / "secret"),
            auth_jwt_audience="dragoman",
        )
    )


def _bearer(**claims: object) -> str:
    payload = {"aud": "dragoman", "exp": int(time.time()) + 60} | claims
    return "Bearer " + jwt.encode(payload, SECRET, algorithm="HS256")


def test_rooms_are_names_or_prefixes_and_none_means_every_room() -> None:
    scoped = Identity(rooms=("standup", "team-*"))
    assert [scoped.may_enter(r) for r in ("standup", "team-", "team-red", "standup2", "team")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert ANYONE.may_enter("anything")
    assert not Identity(rooms=()).may_enter("standup")


def test_static_tokens_and_jwts_carry_their_rooms_and_subject(authenticator) -> None:
    assert authenticator.check("Bearer a", "recognize").rooms == ("standup", "team-*")
    assert authenticator.check("Bearer b", "captions").rooms is None
    one = authenticator.check(_bearer(sub="ana", rooms="standup"), "recognize")
    assert (one.subject, one.rooms) == ("ana", ("standup",))
    several = authenticator.check(_bearer(rooms=["standup", "team-*"]), "captions")
    assert several.rooms == ("standup", "team-*")
    assert authenticator.check(_bearer(), "recognize").rooms is None


@pytest.mark.parametrize("rooms", [7, ["a b"], [""], {"standup": True}, ["team-*-x"]])
def test_a_jwt_with_a_malformed_rooms_claim_is_not_accepted(authenticator, rooms) -> None:
    with pytest.raises(AuthError) as refused:
        authenticator.check(_bearer(rooms=rooms), "recognize")
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_a_tokens_file_with_a_bad_room_names_the_line(tmp_path) -> None:
    (tmp_path / "tokens").write_text("ok\nbad rooms=standup,not/a/room\n")
    with pytest.raises(SettingsError, match=r"tokens:2: not/a/room is not a room name"):
        Authenticator(AuthSettings(auth_tokens_file=str(tmp_path / "tokens")))
