"""Stream config validation: every problem named at once, defaults from the settings, the
spoken language checked against the languages the STT service lists for the model."""

import pytest
from google.protobuf import duration_pb2

from dragoman.api.speech.v1 import speech_pb2
from dragoman.api.stt.v1 import stt_pb2
from dragoman.errors import InvalidRequestError
from dragoman.gateway import request_options
from dragoman.gateway.settings import GatewaySettings
from dragoman.gateway.stt_client import ModelCatalog

SETTINGS = GatewaySettings()


def linear16(**fields: object) -> speech_pb2.RecognitionConfig:
    values = {"encoding": speech_pb2.AUDIO_ENCODING_LINEAR16, "sample_rate_hertz": 8000} | fields
    return speech_pb2.RecognitionConfig(**values)


def test_defaults_come_from_the_gateway_settings() -> None:
    options = request_options.parse(linear16(), speech_pb2.VoiceActivityConfig(), SETTINGS)
    assert options.channels == 1
    assert options.language_code == ""
    assert options.segmenter.endpoint_silence_s == SETTINGS.vad.endpoint_silence_s
    assert options.vad.aggressiveness == SETTINGS.vad.vad_aggressiveness


def test_auto_language_means_detection() -> None:
    options = request_options.parse(
        linear16(language_code="auto"), speech_pb2.VoiceActivityConfig(), SETTINGS
    )
    assert options.language_code == ""


def test_explicit_zero_aggressiveness_is_honoured() -> None:
    vad = speech_pb2.VoiceActivityConfig(aggressiveness=0)
    assert request_options.parse(linear16(), vad, SETTINGS).vad.aggressiveness == 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"set_aggressiveness": True}, 0, id="zero"),
        pytest.param({"aggressiveness": 1, "set_aggressiveness": True}, 1, id="non-zero"),
    ],
)
def test_a_release_0_1_client_gets_the_aggressiveness_it_meant(
    fields: dict[str, object], expected: int
) -> None:
    """0.1.0 clients marked a set aggressiveness with a flag, and proto3 left a 0 off the
    wire: the message is read from those bytes, as the gateway receives it."""
    wire = speech_pb2.VoiceActivityConfig(**fields).SerializeToString()
    vad = speech_pb2.VoiceActivityConfig.FromString(wire)
    assert request_options.parse(linear16(), vad, SETTINGS).vad.aggressiveness == expected


def test_out_of_range_aggressiveness_is_reported() -> None:
    vad = speech_pb2.VoiceActivityConfig(aggressiveness=4)
    with pytest.raises(InvalidRequestError, match=r"voice_activity\.aggressiveness 4"):
        request_options.parse(linear16(), vad, SETTINGS)


def test_every_bad_field_is_reported_in_one_error() -> None:
    vad = speech_pb2.VoiceActivityConfig(
        endpoint_silence=duration_pb2.Duration(seconds=9), speech_threshold=1.5
    )
    with pytest.raises(InvalidRequestError) as caught:
        request_options.parse(
            linear16(sample_rate_hertz=4000, language_code="klingon"), vad, SETTINGS
        )
    message = str(caught.value)
    for expected in (
        "sample_rate_hertz 4000",
        "language_code 'klingon'",
        "speech_threshold",
        "endpoint_silence 9",
    ):
        assert expected in message


def test_language_codes_are_checked_for_their_shape_only() -> None:
    """Which languages are served, the STT and translation services say: a well-formed code
    that none of them knows passes here, to be refused by the model catalog or the routing."""
    options = request_options.parse(
        linear16(language_code=" XX ", translation_language_codes=["pt", "haw", "pt"]),
        speech_pb2.VoiceActivityConfig(),
        SETTINGS,
    )
    assert (options.language_code, options.translation_targets) == ("xx", ("pt", "haw"))
    with pytest.raises(InvalidRequestError, match="'english', 'p1' are not language codes"):
        request_options.parse_languages("", ["english", "p1"])


TINY_EN = stt_pb2.ModelInfo(name="tiny.en", english_only=True, language_codes=["en"])
BASE = stt_pb2.ModelInfo(name="base", is_default=True, language_codes=["en", "es", "pt"])
CATALOG = ModelCatalog(models={"tiny.en": TINY_EN, "base": BASE}, default="base")


@pytest.mark.parametrize(
    ("model", "language"), [("", "es"), ("base", "pt"), ("tiny.en", "en"), ("tiny.en", "")]
)
def test_a_language_the_model_recognizes_is_accepted(model: str, language: str) -> None:
    assert CATALOG.resolve(model, language).name == (model or "base")


@pytest.mark.parametrize(
    ("model", "language", "message"),
    [
        pytest.param(
            "tiny.en",
            "es",
            "language_code 'es' is not recognized by the English-only model 'tiny.en': valid "
            "values are en, or 'auto'; models that recognize it: base",
            id="another-model-recognizes-it",
        ),
        pytest.param(
            "",
            "xx",
            "language_code 'xx' is not recognized by the model 'base': valid values are en, "
            "es, pt, or 'auto'",
            id="no-model-recognizes-it",
        ),
    ],
)
def test_a_language_the_model_lacks_is_refused_with_the_valid_values(
    model: str, language: str, message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        CATALOG.resolve(model, language)
    assert str(caught.value) == message


def test_compressed_audio_needs_no_rate() -> None:
    compressed = speech_pb2.RecognitionConfig(encoding=speech_pb2.AUDIO_ENCODING_COMPRESSED)
    assert (
        request_options.parse(compressed, speech_pb2.VoiceActivityConfig(), SETTINGS).encoding
        == "COMPRESSED"
    )
