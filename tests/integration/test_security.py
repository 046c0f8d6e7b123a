"""Bearer tokens (static and JWT), TLS and mutual TLS, with keys and certificates made here."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.api.stt.v1 import stt_pb2, stt_pb2_grpc
from dragoman.auth import PERMISSION_DENIED_MESSAGE, UNAUTHENTICATED_MESSAGE
from dragoman.clients.streaming import streaming_config
from dragoman.stt.app import SttApp
from dragoman.stt.settings import SttSettings
from tests.certificates import Authority
from tests.conftest import DATA, edge_in_front, own_gateway
from tests.grpc_web import unary
from tests.streaming import audio_requests, config_request, finals, read_wav
from tests.websocket import END_OF_AUDIO, audio_frames, config_frame, converse

HS256_SECRET = "a-secret-of-the-test-that-is-long-enough-for-hs256"
AUDIENCE = "dragoman-test"


@dataclass(frozen=True)
class Keys:
    tokens: Path
    hs256: Path
    rs256_public: Path
    rs256_private: rsa.RSAPrivateKey
    stranger_private: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Keys:
    folder = tmp_path_factory.mktemp("keys")
    (folder / "tokens").write_text(
        "# token scopes rooms\nfull-access\nlistener-only captions\n"
        "room-a-only recognize rooms=room-a\nteam-listener captions rooms=team-*,lobby\n"
    )
    (folder / "hs256").write_text(HS256_SECRET + "\n")
    private, stranger = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)
    )
    (folder / "rs256.pub").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Keys(folder / "tokens", folder / "hs256", folder / "rs256.pub", private, stranger)


@pytest.fixture(scope="module")
def guarded(stack, keys) -> Iterator:
    with own_gateway(
        stack,
        auth_tokens_file=str(keys.tokens),
        auth_jwt_hs256_secret_file=str(keys.hs256),
        auth_jwt_rs256_public_key_file=str(keys.rs256_public),
        auth_jwt_audience=AUDIENCE,
    ) as app:
        yield app


def _jwt(key, algorithm: str, **claims: object) -> str:
    payload = {"aud": AUDIENCE, "exp": int(time.time()) + 300, "sub": "test"} | claims
    return jwt.encode(payload, key, algorithm=algorithm)


def _recognize(address: str, token: str | None, channel: grpc.Channel | None = None):
    wav = (DATA / "en" / "goforward.wav").read_bytes()
    request = speech_pb2.RecognizeRequest(
        config=speech_pb2.RecognitionConfig(
            encoding=speech_pb2.AUDIO_ENCODING_COMPRESSED, language_code="en"
        ),
        audio_content=wav,
    )
    metadata = [("authorization", f"Bearer {token}")] if token is not None else []
    own = channel is None
    channel = channel or grpc.insecure_channel(address)
    try:
        return speech_pb2_grpc.SpeechServiceStub(channel).Recognize(
            request, metadata=metadata, timeout=60
        )
    finally:
        if own:
            channel.close()


def _refusal(address: str, token: str | None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _recognize(address, token)
    return caught.value


def test_valid_tokens_of_every_kind_are_let_in(guarded, keys) -> None:
    for token in (
        "full-access",
        _jwt(HS256_SECRET, "HS256"),
        _jwt(keys.rs256_private, "RS256", scope="recognize"),
    ):
        assert _recognize(guarded.address, token).results


@pytest.mark.parametrize(
    "token",
    ["", "nonsense", "expired", "wrong-audience", "stranger-key", "none-algorithm"],
)
def test_bad_tokens_get_unauthenticated_with_no_detail(guarded, keys, token) -> None:
    tokens = {
        "": None,
        "nonsense": "nonsense",
        "expired": _jwt(HS256_SECRET, "HS256", exp=int(time.time()) - 3600),
        "wrong-audience": _jwt(HS256_SECRET, "HS256", aud="someone-else"),
        "stranger-key": _jwt(keys.stranger_private, "RS256"),
        "none-algorithm": jwt.encode({"aud": AUDIENCE, "exp": int(time.time()) + 60}, None, "none"),
    }
    error = _refusal(guarded.address, tokens[token])
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == UNAUTHENTICATED_MESSAGE


def test_a_token_without_the_scope_gets_permission_denied(guarded, keys) -> None:
    for token in ("listener-only", _jwt(HS256_SECRET, "HS256", scope="captions")):
        error = _refusal(guarded.address, token)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error.details() == PERMISSION_DENIED_MESSAGE
    with grpc.insecure_channel(guarded.address) as channel:
        listen = speech_pb2_grpc.SpeechServiceStub(channel).StreamCaptions(
            speech_pb2.StreamCaptionsRequest(room="lobby"),
            metadata=[("authorization", "Bearer listener-only")],
            timeout=1,
        )
        with pytest.raises(grpc.RpcError) as caught:
            list(listen)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, "let in, then waiting"


def test_health_and_reflection_need_no_token(guarded) -> None:
    with grpc.insecure_channel(guarded.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_the_bridge_takes_the_token_as_query_or_subprotocol(stack, guarded) -> None:
    audio = read_wav(DATA / "en" / "goforward.wav")
    frames = [config_frame(), *audio_frames(audio), END_OF_AUDIO]
    url = f"ws://{guarded.http_address}/ws/v1/recognize"
    refused = stack.loop.run(converse(url, frames))
    [error] = refused.errors()
    assert (error.status, error.message) == ("UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE)
    assert refused.close_code == 4016
    by_query = stack.loop.run(converse(f"{url}?access_token=full-access", frames))
    assert by_query.close_code == 1000
    assert by_query.finals()
    by_protocol = stack.loop.run(
        converse(url, frames, extra_protocols=["dragoman.bearer.full-access"])
    )
    assert by_protocol.close_code == 1000
    listener = stack.loop.run(converse(f"{url}?access_token=listener-only", frames))
    assert listener.close_code == 4007


ROOM_A_TOKENS = {
    "static": "room-a-only",
    "jwt": _jwt(HS256_SECRET, "HS256", rooms="room-a"),
    "jwt-list": _jwt(HS256_SECRET, "HS256", rooms=["room-a", "other-*"]),
}


def _listen(address: str, room: str, token: str) -> grpc.StatusCode:
    """How a StreamCaptions call ends: DEADLINE_EXCEEDED means it was let in and waited."""
    with grpc.insecure_channel(address) as channel:
        call = speech_pb2_grpc.SpeechServiceStub(channel).StreamCaptions(
            speech_pb2.StreamCaptionsRequest(room=room),
            metadata=[("authorization", f"Bearer {token}")],
            timeout=1,
        )
        with pytest.raises(grpc.RpcError) as ended:
            list(call)
    return ended.value.code()


def _speak(address: str, room: str, token: str) -> list:
    audio = read_wav(DATA / "en" / "goforward.wav")
    with grpc.insecure_channel(address) as channel:
        responses = speech_pb2_grpc.SpeechServiceStub(channel).StreamingRecognize(
            iter([config_request(audio, caption_room=room), *audio_requests(audio)]),
            metadata=[("authorization", f"Bearer {token}")],
            timeout=60,
        )
        return finals(list(responses))


@pytest.mark.parametrize("kind", sorted(ROOM_A_TOKENS))
def test_a_room_scoped_token_is_refused_on_other_rooms_over_grpc(guarded, kind) -> None:
    token = ROOM_A_TOKENS[kind]
    assert _speak(guarded.address, "room-a", token)
    assert _listen(guarded.address, "room-a", token) == grpc.StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(grpc.RpcError) as speaking:
        _speak(guarded.address, "room-b", token)
    assert speaking.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not scoped to caption room 'room-b'" in speaking.value.details()
    assert _listen(guarded.address, "room-b", token) == grpc.StatusCode.PERMISSION_DENIED


def test_room_patterns_and_lists_of_static_tokens(guarded) -> None:
    for room in ("team-red", "team-", "lobby"):
        assert _listen(guarded.address, room, "team-listener") == grpc.StatusCode.DEADLINE_EXCEEDED
    for room in ("lobby2", "teams", "room-a"):
        assert _listen(guarded.address, room, "team-listener") == grpc.StatusCode.PERMISSION_DENIED


def test_a_room_scoped_token_is_refused_on_other_rooms_over_grpc_web_and_the_bridge(
    stack, guarded
) -> None:
    with edge_in_front(guarded, stack.loop) as edge:
        url = f"http://{edge.address}/dragoman.speech.v1.SpeechService/StreamCaptions"
        request = speech_pb2.StreamCaptionsRequest(room="room-b").SerializeToString()
        for token in ROOM_A_TOKENS.values():
            _, code, message = unary(url, request, timeout_s=10, token=token)
            assert code == grpc.StatusCode.PERMISSION_DENIED.value[0], message
            assert "room-b" in message
    audio = read_wav(DATA / "en" / "goforward.wav")
    url = f"ws://{guarded.http_address}/ws/v1/recognize"
    for room, close_code in (("room-a", 1000), ("room-b", 4007)):
        frames = [config_frame(captionRoom=room), *audio_frames(audio), END_OF_AUDIO]
        for token in ROOM_A_TOKENS.values():
            spoken = stack.loop.run(converse(f"{url}?access_token={token}", frames))
            assert spoken.close_code == close_code, (room, spoken.errors())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    authority = Authority(folder, "dragoman-test-ca")
    return {
        "ca": authority.cert,
        "server": authority.issue("server", server=True),
        "client": authority.issue("client", server=False),
        "rogue": Authority(folder, "rogue-ca").issue("rogue", server=False),
    }


def _tls_channel(address: str, pki, client: str | None) -> grpc.Channel:
    issued = pki[client] if client else None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].read_bytes(),
        private_key=issued.key.read_bytes() if issued else None,
        certificate_chain=issued.cert.read_bytes() if issued else None,
    )
    return grpc.secure_channel(address, credentials)


def test_tls_and_mutual_tls_on_the_public_port(stack, pki) -> None:
    server = pki["server"]
    tls = {"tls_cert_file": str(server.cert), "tls_key_file": str(server.key)}
    with own_gateway(stack, **tls) as app:
        with _tls_channel(app.address, pki, None) as channel:
            assert _recognize(app.address, None, channel).results
        with pytest.raises(grpc.RpcError) as plaintext:
            _recognize(app.address, None)
        assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE
    with own_gateway(stack, **tls, tls_client_ca_file=str(pki["ca"])) as app:
        with _tls_channel(app.address, pki, "client") as channel:
            assert _recognize(app.address, None, channel).results
        for client in (None, "rogue"):
            with _tls_channel(app.address, pki, client) as channel, pytest.raises(grpc.RpcError):
                _recognize(app.address, None, channel)


def test_mutual_tls_on_the_internal_hop_to_stt(stack, pki) -> None:
    server = pki["server"]
    stt = SttApp(
        SttSettings(
            host="127.0.0.1",
            port=0,
            metrics_port=0,
            tls_cert_file=str(server.cert),
            tls_key_file=str(server.key),
            tls_client_ca_file=str(pki["ca"]),
        )
    )

    async def start() -> None:
        await stt.start()
        await stt.wait_ready()

    stack.loop.run(start())
    audio = read_wav(DATA / "en" / "goforward.wav")
    try:
        client = pki["client"]
        with (
            own_gateway(
                stack,
                stt_target=stt.address,
                backend_tls_ca_file=str(pki["ca"]),
                backend_tls_cert_file=str(client.cert),
                backend_tls_key_file=str(client.key),
            ) as app,
            grpc.insecure_channel(app.address) as channel,
        ):
            responses = list(
                speech_pb2_grpc.SpeechServiceStub(channel).StreamingRecognize(
                    iter([config_request(audio), *audio_requests(audio)]), timeout=60
                )
            )
        assert finals(responses)[0].transcript
        with pytest.raises(grpc.RpcError) as refused:
            stack.loop.run(_probe_without_client_certificate(stt.address, pki))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        stack.loop.run(stt.stop())


async def _probe_without_client_certificate(address: str, pki) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
    async with grpc.aio.secure_channel(address, credentials) as channel:
        await stt_pb2_grpc.SttServiceStub(channel).ListModels(
            stt_pb2.ListModelsRequest(), timeout=10
        )


def test_a_session_resumes_only_for_the_caller_that_started_it(guarded) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    config = speech_pb2.StreamingRecognizeRequest(
        streaming_config=streaming_config(audio, language_code="en")
    )

    def held_open():
        yield config
        time.sleep(20)

    with grpc.insecure_channel(guarded.address) as channel:
        stub = speech_pb2_grpc.SpeechServiceStub(channel)
        started = stub.StreamingRecognize(
            held_open(), metadata=[("authorization", "Bearer full-access")], timeout=30
        )
        token = next(started).session.resume_token
        started.cancel()
        resume = speech_pb2.StreamingRecognizeRequest(
            resume=speech_pb2.ResumeSession(resume_token=token)
        )
        stranger = _jwt(HS256_SECRET, "HS256", sub="mallory")
        with pytest.raises(grpc.RpcError) as refused:
            list(
                stub.StreamingRecognize(
                    iter([resume]),
                    metadata=[("authorization", f"Bearer {stranger}")],
                    timeout=10,
                )
            )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "another caller" in refused.value.details()
