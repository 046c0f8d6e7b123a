"""Stream config validation: every problem named at once, defaults from the settings."""

import pytest
from dragoman.gateway import config
from dragoman.gateway.errors import InvalidRequestError
from dragoman.gateway.settings import GatewaySettings
from google.protobuf import duration_pb2

from dragoman.api.speech.v1 import speech_pb2

SETTINGS = GatewaySettings()


def linear16(**fields: object) -> speech_pb2.RecognitionConfig:
    values = {"encoding": speech_pb2.AUDIO_ENCODING_LINEAR16, "sample_rate_hertz": 8000} | fields
    return speech_pb2.RecognitionConfig(**values)


def test_defaults_come_from_the_gateway_settings() -> None:
    options = config.parse(linear16(), speech_pb2.VoiceActivityConfig(), SETTINGS)
    assert options.channels == 1
    assert options.language_code == ""
    assert options.segmenter.endpoint_silence_s == SETTINGS.endpoint_silence_s
    assert options.vad.aggressiveness == SETTINGS.vad_aggressiveness


def test_auto_language_means_detection() -> None:
    options = config.parse(
        linear16(language_code="auto"), speech_pb2.VoiceActivityConfig(), SETTINGS
    )
    assert options.language_code == ""


def test_explicit_zero_aggressiveness_is_honoured() -> None:
    vad = speech_pb2.VoiceActivityConfig(aggressiveness=0, set_aggressiveness=True)
    assert config.parse(linear16(), vad, SETTINGS).vad.aggressiveness == 0


def test_every_bad_field_is_reported_in_one_error() -> None:
    vad = speech_pb2.VoiceActivityConfig(
        endpoint_silence=duration_pb2.Duration(seconds=9), speech_threshold=1.5
    )
    with pytest.raises(InvalidRequestError) as caught:
        config.parse(linear16(sample_rate_hertz=4000, language_code="klingon"), vad, SETTINGS)
    message = str(caught.value)
    for expected in (
        "sample_rate_hertz 4000",
        "language_code 'klingon'",
        "speech_threshold",
        "endpoint_silence 9",
    ):
        assert expected in message


def test_compressed_audio_needs_no_rate() -> None:
    compressed = speech_pb2.RecognitionConfig(encoding=speech_pb2.AUDIO_ENCODING_COMPRESSED)
    assert (
        config.parse(compressed, speech_pb2.VoiceActivityConfig(), SETTINGS).encoding
        == "COMPRESSED"
    )
