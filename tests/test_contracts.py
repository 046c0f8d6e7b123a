"""What the public proto and the CLI say of a default or a range is what the settings
declare.

A default or range is declared once, as a `Field` of the gateway's settings; the README
table is generated from it (tests/test_cli.py). The proto's comments are prose for client
developers, so they are checked here: a `VoiceActivityConfig` field states its range and
default as `Range LOW-HIGH[ exclusive][ s]; default VALUE[ s]`, and any other mention of a
setting reads `` `name`, default VALUE ``.
"""

import argparse
import re
from pathlib import Path

import pytest

from dragoman.gateway.settings import GatewaySettings, VadDefaults
from dragoman.serving import KiB, MiB
from dragoman.settings import add_arguments, declared, declared_range, leaves

ROOT = Path(__file__).resolve().parent.parent
SPEECH_PROTO = ROOT / "protos" / "dragoman" / "speech" / "v1" / "speech.proto"
VOICE_ACTIVITY = {
    "aggressiveness": "vad_aggressiveness",
    "speech_threshold": "vad_speech_threshold",
    "endpoint_silence": "endpoint_silence_s",
    "pre_speech": "pre_speech_s",
    "max_utterance_duration": "max_utterance_s",
    "min_speech": "min_speech_s",
}
MENTION = re.compile(r"`(\w+)`, default ([^)]+?)\)")


def _comments(message: str) -> dict[str, str]:
    """Each field of `message` in speech.proto with the comment above it, on one line."""
    text = SPEECH_PROTO.read_text()
    body = re.search(rf"^message {message} {{\n(.*?)^}}", text, re.S | re.M)
    assert body, f"speech.proto has no message {message}"
    fields, comment = {}, []
    for line in body.group(1).splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            comment.append(stripped.removeprefix("//").strip())
        elif field := re.match(r"(?:optional |repeated )?[\w.]+ (\w+) = \d+", stripped):
            fields[field.group(1)] = " ".join(comment)
            comment = []
    return fields


def render(name: str, value: object) -> str:
    """A default as the proto writes it: bytes in MiB or KiB, seconds with their unit."""
    if name.endswith("_bytes") and isinstance(value, int):
        for unit, size in (("MiB", MiB), ("KiB", KiB)):
            if value % size == 0:
                return f"{value // size} {unit}"
    if isinstance(value, float):
        return f"{value:g} s" if name.endswith("_s") else f"{value:g}"
    return str(value)


@pytest.mark.parametrize(("field", "setting"), sorted(VOICE_ACTIVITY.items()))
def test_voice_activity_comments_state_the_declared_range_and_default(
    field: str, setting: str
) -> None:
    valid = declared_range(VadDefaults, setting)
    unit = " s" if setting.endswith("_s") else ""
    exclusive = " exclusive" if valid.low_exclusive and valid.high_exclusive else ""
    default = declared(VadDefaults, setting).default
    expected = f"Range {valid.low:g}-{valid.high:g}{exclusive}{unit}; default {default:g}{unit}"
    comment = _comments("VoiceActivityConfig")[field]
    assert expected in comment, (
        f"VoiceActivityConfig.{field} must say {expected!r} (the declaration of {setting}); "
        f"its comment says: {comment}"
    )


def test_every_setting_the_proto_mentions_has_the_declared_default() -> None:
    mentions = MENTION.findall(SPEECH_PROTO.read_text().replace("\n  //", ""))
    assert mentions, "speech.proto mentions no setting with its default"
    wrong = []
    for name, stated in mentions:
        try:
            default = declared(GatewaySettings, name).default
        except KeyError:
            wrong.append(f"`{name}` is not a gateway setting")
            continue
        if render(name, default) != stated.strip():
            wrong.append(
                f"`{name}`: the proto says {stated!r}, the settings declare "
                f"{render(name, default)!r}"
            )
    assert not wrong, "\n".join(wrong)


def test_the_check_reads_what_it_should() -> None:
    assert render("max_message_bytes", 4 * MiB) == "4 MiB"
    assert render("stream_window_bytes", 64 * KiB) == "64 KiB"
    assert render("speedup_burst_s", 30.0) == "30 s"
    assert render("max_speedup", 10.0) == "10"
    assert MENTION.findall("limit (`max_chunk_bytes`, default 1 MiB) is") == [
        ("max_chunk_bytes", "1 MiB")
    ]


def test_the_cli_offers_every_setting_with_its_declared_default() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, GatewaySettings)
    helps = {action.dest: action.help or "" for action in parser._actions}
    missing = [
        path[-1]
        for path, field in leaves(GatewaySettings)
        if f"(default: {field.default!r})" not in helps.get(path[-1], "")
    ]
    assert not missing, f"settings without a flag that states their default: {missing}"
