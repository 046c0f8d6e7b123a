import pytest
from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M100
from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB

from dragoman.translate import languages
from dragoman.translate.languages import UnknownLanguageError


def test_covers_the_common_languages_in_every_family() -> None:
    codes = set(languages.LANGUAGES)
    m2m100 = set(M2M100["m2m100"])

    assert len(codes) >= 40
    assert {"en", "pt", "es", "fr", "de", "it", "zh", "ja", "ar", "hi", "ru"} <= codes
    assert {languages.flores_code(code) for code in codes} <= set(NLLB)
    assert len({languages.m2m100_code(code) for code in codes} & m2m100) >= 40


@pytest.mark.parametrize(
    ("code", "flores"),
    [("en", "eng_Latn"), ("pt", "por_Latn"), ("zh", "zho_Hans"), ("ar", "arb_Arab")],
)
def test_maps_to_flores_codes(code: str, flores: str) -> None:
    assert languages.flores_code(code) == flores


@pytest.mark.parametrize("code", ["pt", "PT", " pt ", "pt-BR", "pt_br"])
def test_accepts_case_space_and_region(code: str) -> None:
    assert languages.language(code).code == "pt"


def test_unknown_code_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownLanguageError) as error:
        languages.language("xx")

    assert "unknown language code 'xx'" in str(error.value)
    assert "en, es" in str(error.value)


@pytest.mark.parametrize(
    ("model_code", "code"),
    [
        (">>por<<", "pt"),
        (">>pt_BR<<", "pt"),
        (">>cmn_Hans<<", "zh"),
        ("deu", "de"),
        ("en", "en"),
        ("ROMANCE", None),
        ("mul", None),
        (">>xyz<<", None),
    ],
)
def test_reads_model_codes(model_code: str, code: str | None) -> None:
    assert languages.from_model_code(model_code) == code


def test_finds_marian_target_tokens_in_a_vocabulary() -> None:
    vocabulary = ["</s>", ">>por<<", ">>pt_BR<<", ">>spa<<", ">>xyz<<", "▁the"]

    assert languages.marian_target_tokens(vocabulary) == {"pt": ">>por<<", "es": ">>spa<<"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Helsinki-NLP/opus-mt-en-de", (["en"], ["de"])),
        ("/models/opus-mt-tc-big-en-pt/", (["en"], ["pt"])),
        ("opus-mt-en-ROMANCE", (["en"], [])),
        ("opus-mt-en_el_es_fi-en_el_es_fi", (["en", "el", "es", "fi"],) * 2),
        ("facebook/nllb-200-distilled-600M", ([], [])),
    ],
)
def test_reads_opus_mt_names(name: str, expected: tuple[list[str], list[str]]) -> None:
    assert languages.opus_mt_languages(name) == expected
