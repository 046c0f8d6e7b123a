"""Translations of final results through the real gateway, STT and translation services."""

import grpc
import numpy as np
import pytest
from sacrebleu.metrics import CHRF

from dragoman.api.speech.v1 import speech_pb2
from dragoman.clients.audio_file import PcmAudio
from tests.conftest import DATA, embedded_stack, running
from tests.streaming import (
    audio_requests,
    config_request,
    finals,
    paced,
    read_wav,
    samples,
    silence,
)

Request = speech_pb2.StreamingRecognizeRequest
Update = speech_pb2.StreamingControl.UpdateLanguages

ENGLISH_REFERENCES = {
    "es/ivr-agent-pass.wav": "Please enter your password followed by the pound key.",
    "es/ivr-confbridge-muted.wav": "You are now in mute mode.",
    "es/ivr-vm-marked-urgent.wav": "This message has been marked as urgent.",
    "es/ivr-vm-calldiffnum.wav": "Press 2 to call another number.",
    "fr/ivr-pls-hold-while-try.wav": "Please wait while we route your call.",
    "fr/ivr-confbridge-only-one.wav": "There is only one participant in this conference.",
    "fr/ivr-conf-kicked.wav": "You have been expelled from this conference.",
    "fr/ivr-priv-recordintro.wav": "At the tone, please say your name.",
}


def _translating(audio: PcmAudio, *targets: str, language: str = "en") -> Request:
    request = config_request(audio)
    request.streaming_config.config.language_code = language
    request.streaming_config.config.translation_language_codes.extend(targets)
    return request


def test_each_final_carries_its_translations_in_target_order(stack) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    requests = [_translating(audio, "pt", "en"), *audio_requests(audio)]
    results = finals(list(stack.stub.StreamingRecognize(iter(requests), timeout=120)))
    assert results
    for result in results:
        assert [t.language_code for t in result.translations] == ["pt", "en"]
        portuguese, english = result.translations
        assert portuguese.backend == "bergamot"
        assert portuguese.text
        assert not portuguese.error
        assert english.backend == "none"
        assert english.text == result.transcript
    portuguese_text = " ".join(r.translations[0].text for r in results).lower()
    assert "país" in portuguese_text


def test_an_unserved_pair_is_refused_naming_the_served_pairs(stack) -> None:
    audio = read_wav(DATA / "en" / "cards-001.wav")
    with pytest.raises(grpc.RpcError) as caught:
        list(stack.stub.StreamingRecognize(iter([_translating(audio, "de")]), timeout=30))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "en→de" in caught.value.details()
    assert "en→pt (bergamot)" in caught.value.details()


def test_changed_targets_apply_from_the_next_utterance(stack) -> None:
    clips = [samples(read_wav(DATA / "en" / name)) for name in ("goforward.wav", "cards-005.wav")]
    gap = silence(2.0, 16000)
    first = PcmAudio(np.concatenate([gap, clips[0], gap]).tobytes(), 16000, 1)
    middle = len(clips[1]) // 2
    second_head = PcmAudio(clips[1][:middle].tobytes(), 16000, 1)
    second_tail = PcmAudio(np.concatenate([clips[1][middle:], gap]).tobytes(), 16000, 1)
    third = PcmAudio(np.concatenate([clips[0], gap]).tobytes(), 16000, 1)
    update = Request(
        control=speech_pb2.StreamingControl(
            update_languages=speech_pb2.StreamingControl.UpdateLanguages(
                language_code="en", translation_language_codes=["pt"]
            )
        )
    )
    requests = [
        _translating(first),
        *audio_requests(first),
        *audio_requests(second_head),
        update,
        *audio_requests(second_tail),
        *audio_requests(third),
    ]
    results = finals(list(stack.stub.StreamingRecognize(iter(requests), timeout=120)))
    assert len(results) == 3
    assert [len(r.translations) for r in results] == [0, 0, 1]
    assert results[2].translations[0].language_code == "pt"
    assert results[2].translations[0].text


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        pytest.param(
            Update(translation_language_codes=["english"]),
            "'english' are not language codes",
            id="malformed",
        ),
        pytest.param(
            Update(language_code="en", translation_language_codes=["xx"]),
            "no backend translates en→xx",
            id="unserved",
        ),
    ],
)
def test_an_invalid_language_update_is_refused(stack, update: Update, expected: str) -> None:
    audio = read_wav(DATA / "en" / "cards-001.wav")
    control = Request(control=speech_pb2.StreamingControl(update_languages=update))
    with pytest.raises(grpc.RpcError) as caught:
        list(stack.stub.StreamingRecognize(iter([_translating(audio), control]), timeout=30))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in caught.value.details()


@pytest.fixture(scope="module")
def multilingual(loop_thread, tmp_path_factory):
    """A stack whose STT serves the multilingual base model."""
    yield from running(embedded_stack("base", tmp_path_factory.mktemp("models")), loop_thread)


@pytest.mark.base_model
def test_whisper_translates_spanish_and_french_speech_to_english(multilingual) -> None:
    hypotheses, references = [], []
    for name, reference in ENGLISH_REFERENCES.items():
        audio = read_wav(DATA / name)
        requests = [_translating(audio, "en", language=name[:2]), *audio_requests(audio)]
        results = finals(list(multilingual.stub.StreamingRecognize(iter(requests), timeout=120)))
        assert results, name
        assert {r.translations[0].backend for r in results} == {"whisper"}
        hypotheses.append(" ".join(r.translations[0].text for r in results))
        references.append(reference)
    score = CHRF().corpus_score(hypotheses, [references]).score
    print(f"Whisper speech→English chrF {score:.1f} on {len(references)} clips")
    assert score >= 45


def test_interim_results_are_translated_when_asked(stack) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    config = _translating(audio, "pt")
    config.streaming_config.interim_results = True
    config.streaming_config.translate_interim_results = True
    requests = [config, *audio_requests(audio)]
    responses = list(stack.stub.StreamingRecognize(paced(requests, 0.05), timeout=120))
    results = [r.result for r in responses if r.HasField("result")]
    translated_interims = [r for r in results if not r.is_final and r.translations]
    assert translated_interims
    assert all(r.translations[0].text for r in translated_interims)
    for segment_id in {r.segment_id for r in results}:
        revisions = [r.revision for r in results if r.segment_id == segment_id]
        assert revisions == list(range(1, len(revisions) + 1))


@pytest.mark.base_model
def test_the_language_of_each_utterance_is_detected_with_its_probability(multilingual) -> None:
    detected = []
    for name in ("fr/ivr-confbridge-only-one.wav", "en/librivox-0880.wav"):
        audio = read_wav(DATA / name)
        requests = [_translating(audio, "en", language=""), *audio_requests(audio)]
        results = finals(list(multilingual.stub.StreamingRecognize(iter(requests), timeout=120)))
        detected += [(r.language_code, r.language_probability) for r in results]
        print(name, detected[-1])
    assert [code for code, _ in detected] == ["fr", "en"]
    assert all(0.5 < probability <= 1.0 for _, probability in detected)


@pytest.mark.base_model
def test_a_language_the_model_lacks_is_refused_with_those_it_recognizes(multilingual) -> None:
    """The gateway knows them from the STT service's listing of its models."""
    requests = iter([_translating(read_wav(DATA / "en" / "jfk.wav"), language="xx")])
    with pytest.raises(grpc.RpcError) as caught:
        list(multilingual.stub.StreamingRecognize(requests, timeout=30))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    refusal = "language_code 'xx' is not recognized by the model 'base': valid values are "
    assert caught.value.details().startswith(refusal)
    listed = caught.value.details().removeprefix(refusal).removesuffix(", or 'auto'").split(", ")
    assert listed == sorted(listed)
    assert {"en", "es", "fr", "pt", "haw", "yue"} <= set(listed)
