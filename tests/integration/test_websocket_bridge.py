"""The WebSocket bridge, straight to the gateway and through the real Envoy."""

import json

import aiohttp
import numpy as np
import pytest

from dragoman.clients.audio_file import PcmAudio
from dragoman.clients.wer import normalize
from dragoman.gateway.bridge import PROTO_PROTOCOL
from tests.conftest import DATA
from tests.streaming import read_wav, samples, silence
from tests.websocket import END_OF_AUDIO, audio_frames, config_frame, converse

JFK = "ask not what your country can do for you"


@pytest.fixture(params=["gateway", "envoy"])
def bridge_url(request, stack) -> str:
    if request.param == "gateway":
        return stack.bridge_url
    edge = request.getfixturevalue("edge")
    return f"ws://{edge.address}/ws/v1/recognize"


def test_a_clip_is_transcribed_and_translated_over_the_bridge(stack, bridge_url) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    frames = [config_frame(targets=["pt"]), *audio_frames(audio), END_OF_AUDIO]
    conversation = stack.loop.run(converse(bridge_url, frames))
    assert conversation.close_code == 1000
    assert conversation.messages[0].session.model == "tiny.en"
    finals = conversation.finals()
    assert JFK in normalize(" ".join(f.transcript for f in finals))
    assert all(f.translations[0].language_code == "pt" for f in finals)
    assert "país" in " ".join(f.translations[0].text for f in finals).lower()


def test_the_proto_subprotocol_sends_binary_messages(stack) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    frames = [config_frame(), *audio_frames(audio), END_OF_AUDIO]
    conversation = stack.loop.run(converse(stack.bridge_url, frames, protocol=PROTO_PROTOCOL))
    assert conversation.close_code == 1000
    assert JFK in normalize(" ".join(f.transcript for f in conversation.finals()))


def test_finalize_ends_the_utterance_at_once(stack) -> None:
    speech = samples(read_wav(DATA / "en" / "jfk.wav"))[: int(16000 * 6.5)]
    audio = PcmAudio(speech.tobytes(), 16000, 1)
    finalize = json.dumps({"control": {"finalize": {}}})
    frames = [config_frame(), *audio_frames(audio), finalize, END_OF_AUDIO]
    finals = stack.loop.run(converse(stack.bridge_url, frames)).finals()
    assert finals[-1].endpoint_reason == 3  # ENDPOINT_REASON_FINALIZE


def test_a_language_change_applies_from_the_next_utterance(stack) -> None:
    gap = silence(2.0, 16000)
    clip = samples(read_wav(DATA / "en" / "goforward.wav"))
    utterance = PcmAudio(np.concatenate([gap, clip, gap]).tobytes(), 16000, 1)
    update = json.dumps(
        {"control": {"updateLanguages": {"languageCode": "en", "translationLanguageCodes": ["pt"]}}}
    )
    frames = [
        config_frame(),
        *audio_frames(utterance),
        update,
        *audio_frames(utterance),
        END_OF_AUDIO,
    ]
    finals = stack.loop.run(converse(stack.bridge_url, frames)).finals()
    assert [len(f.translations) for f in finals] == [0, 1]
    assert finals[1].translations[0].text


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([b"\x00\x00" * 1600], "the first message must carry streaming_config"),
        (["{not json"], "protobuf JSON mapping"),
        ([config_frame(language="xx")], "language_code 'xx' is not recognized"),
        ([config_frame(targets=["de"])], "en→de"),
        ([config_frame(), config_frame()], "streaming_config may only be sent in the first"),
        ([config_frame(), b"\x00"], "whole"),
        (
            [config_frame(), json.dumps({"control": {"updateLanguages": {"languageCode": "pt"}}})],
            "English-only",
        ),
    ],
    ids=[
        "audio-first",
        "bad-json",
        "bad-language",
        "unserved-pair",
        "two-configs",
        "half-frame",
        "bad-update",
    ],
)
def test_bad_input_gets_the_grpc_status_as_error_and_close_code(
    stack, bridge_url, frames, expected
) -> None:
    conversation = stack.loop.run(converse(bridge_url, [*frames, END_OF_AUDIO]))
    [error] = conversation.errors()
    assert error.status == "INVALID_ARGUMENT"
    assert error.code == 3
    assert expected in error.message
    assert conversation.close_code == 4003


def test_a_socket_closed_mid_stream_leaves_nothing_behind(stack) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    baseline_tasks = stack.task_count()

    async def abandon() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(stack.bridge_url) as socket,
        ):
            await socket.send_str(config_frame(interimResults=True))
            for frame in audio_frames(audio)[:60]:
                await socket.send_bytes(frame)
            await socket.receive()

    stack.loop.run(abandon())
    assert stack.settled(baseline_tasks)
