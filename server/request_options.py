"""Turns a client's RecognitionConfig into validated options, with the server's defaults.

Every problem is reported at once with the field name and the valid values, so that a
client fixes its config in one round trip. Whether the model recognizes the spoken language
is the STT service's to say: the catalog of its models checks it (`stt_client.ModelCatalog`).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import duration_pb2

from dragoman.api.speech.v1 import speech_pb2
from dragoman.errors import InvalidRequestError
from dragoman.gateway.segmenter import SegmenterOptions
from dragoman.gateway.settings import GatewaySettings, VadDefaults
from dragoman.gateway.vad import VadOptions
from dragoman.settings import Range, declared_range

AUTO_LANGUAGE = "auto"
ENCODINGS = {
    speech_pb2.AUDIO_ENCODING_LINEAR16: "LINEAR16",
    speech_pb2.AUDIO_ENCODING_COMPRESSED: "COMPRESSED",
}
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
"""The shape of a language code: ISO 639-1, or ISO 639-3 where a language has no two-letter
code ("haw"). Which languages are served, the STT and translation services say."""
ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SPEAKER_LABEL = 64
SAMPLE_RATES = Range(8000, 48000)
CHANNELS = Range(1, 8)


@dataclass(frozen=True)
class StreamOptions:
    """Everything a recognition stream needs to know, validated."""

    encoding: str
    sample_rate_hz: int
    channels: int
    language_code: str
    """ISO 639-1 code, or empty to detect per utterance."""
    model: str
    """Model name, or empty for the STT service's default."""
    word_time_offsets: bool
    translation_targets: tuple[str, ...]
    """ISO 639-1 codes to translate finals into, in the client's order, each once."""
    translate_interim: bool
    interim_results: bool
    single_utterance: bool
    speech_events: bool
    caption_room: str
    """The caption room results are published to, or empty."""
    speaker_label: str
    """How listeners of the caption room see this speaker; empty: the token's subject."""
    vad: VadOptions
    segmenter: SegmenterOptions


def _encoding_name(value: int) -> str:
    """The enum name, or the number a newer or broken client sent."""
    try:
        return speech_pb2.AudioEncoding.Name(value)
    except ValueError:
        return str(value)


def _seconds(duration: duration_pb2.Duration, default: float) -> float:
    value = duration.seconds + duration.nanos / 1e9
    return value if value else default


def _check_range(problems: list[str], name: str, value: float, valid: Range) -> None:
    if value not in valid:
        problems.append(f"{name} {value:g} is out of range: valid values are {valid}")


def _aggressiveness(voice_activity: speech_pb2.VoiceActivityConfig, default: int) -> int:
    """A set `aggressiveness` wins; a 0.1.0 client marks its 0, which proto3 left off the
    wire, with the deprecated `set_aggressiveness` instead."""
    if voice_activity.HasField("aggressiveness"):
        return voice_activity.aggressiveness
    return 0 if voice_activity.set_aggressiveness else default


def _languages(
    problems: list[str], language_code: str, targets: Sequence[str]
) -> tuple[str, tuple[str, ...]]:
    language = language_code.strip().lower()
    if language == AUTO_LANGUAGE:
        language = ""
    if language and not LANGUAGE_CODE.fullmatch(language):
        problems.append(
            f"language_code {language_code!r} is not a language code: use an ISO 639-1 code "
            "such as 'en', or 'auto'"
        )
    wanted = tuple(dict.fromkeys(t.strip().lower() for t in targets))
    malformed = [t for t in wanted if not LANGUAGE_CODE.fullmatch(t)]
    if malformed:
        problems.append(
            f"translation_language_codes {', '.join(map(repr, malformed))} are not language "
            "codes: use ISO 639-1 codes such as 'pt'"
        )
    return language, wanted


def _check_room(problems: list[str], name: str, room: str) -> None:
    if not ROOM_NAME.fullmatch(room):
        problems.append(
            f"{name} {room!r} is not a valid room name: use 1-64 characters from A-Z, a-z, "
            "0-9, '-' and '_'"
        )


@dataclass(frozen=True)
class CaptionsOptions:
    """A StreamCaptions request, validated."""

    room: str
    language: str
    """ISO 639-1 code of the captions, or empty for the spoken language."""
    interim_results: bool
    resume_after: str


def parse_captions(request: speech_pb2.StreamCaptionsRequest) -> CaptionsOptions:
    """Validates a StreamCaptions request; raises InvalidRequestError naming every bad field."""
    problems: list[str] = []
    _check_room(problems, "room", request.room)
    language, _ = _languages(problems, request.language_code, ())
    if problems:
        raise InvalidRequestError("invalid StreamCaptions request: " + "; ".join(problems))
    return CaptionsOptions(
        room=request.room,
        language=language,
        interim_results=request.interim_results,
        resume_after=request.resume_after.strip(),
    )


def parse_languages(language_code: str, targets: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """(spoken language or "" to detect, targets) of an UpdateLanguages message."""
    problems: list[str] = []
    languages = _languages(problems, language_code, targets)
    if problems:
        raise InvalidRequestError("invalid update_languages: " + "; ".join(problems))
    return languages


def parse(
    config: speech_pb2.RecognitionConfig,
    voice_activity: speech_pb2.VoiceActivityConfig,
    settings: GatewaySettings,
    *,
    interim_results: bool = False,
    single_utterance: bool = False,
    speech_events: bool = False,
    translate_interim: bool = False,
    caption_room: str = "",
    speaker_label: str = "",
) -> StreamOptions:
    """Validates a config; raises InvalidRequestError naming every bad field."""
    problems: list[str] = []
    encoding = ENCODINGS.get(config.encoding)
    if encoding is None:
        problems.append(
            f"encoding {_encoding_name(config.encoding)} is not supported: "
            f"valid values are {', '.join('AUDIO_ENCODING_' + e for e in ENCODINGS.values())}"
        )
    channels = config.audio_channel_count or 1
    if encoding == "LINEAR16":
        _check_range(problems, "sample_rate_hertz", config.sample_rate_hertz, SAMPLE_RATES)
        _check_range(problems, "audio_channel_count", channels, CHANNELS)
    language, targets = _languages(
        problems, config.language_code, config.translation_language_codes
    )
    vad = settings.vad
    aggressiveness = _aggressiveness(voice_activity, vad.vad_aggressiveness)
    threshold = voice_activity.speech_threshold or vad.vad_speech_threshold
    endpoint = _seconds(voice_activity.endpoint_silence, vad.endpoint_silence_s)
    pre_speech = _seconds(voice_activity.pre_speech, vad.pre_speech_s)
    max_utterance = _seconds(voice_activity.max_utterance_duration, vad.max_utterance_s)
    min_speech = _seconds(voice_activity.min_speech, vad.min_speech_s)
    for field, setting, value in (
        ("aggressiveness", "vad_aggressiveness", aggressiveness),
        ("speech_threshold", "vad_speech_threshold", threshold),
        ("endpoint_silence", "endpoint_silence_s", endpoint),
        ("pre_speech", "pre_speech_s", pre_speech),
        ("max_utterance_duration", "max_utterance_s", max_utterance),
        ("min_speech", "min_speech_s", min_speech),
    ):
        _check_range(
            problems, f"voice_activity.{field}", value, declared_range(VadDefaults, setting)
        )
    if caption_room:
        _check_room(problems, "caption_room", caption_room)
    if len(speaker_label) > MAX_SPEAKER_LABEL:
        problems.append(f"speaker_label is longer than {MAX_SPEAKER_LABEL} characters")
    if problems:
        raise InvalidRequestError("invalid config: " + "; ".join(problems))
    assert encoding is not None
    return StreamOptions(
        encoding=encoding,
        sample_rate_hz=config.sample_rate_hertz,
        channels=channels,
        language_code=language,
        model=config.model.strip(),
        word_time_offsets=config.enable_word_time_offsets,
        translation_targets=targets,
        translate_interim=translate_interim,
        interim_results=interim_results,
        single_utterance=single_utterance,
        speech_events=speech_events,
        caption_room=caption_room,
        speaker_label=speaker_label.strip(),
        vad=VadOptions(aggressiveness=aggressiveness, speech_threshold=threshold),
        segmenter=SegmenterOptions(
            endpoint_silence_s=endpoint,
            pre_speech_s=pre_speech,
            max_utterance_s=max_utterance,
            min_speech_s=min_speech,
        ),
    )
