"""ISO 639-1 codes on the wire, each model family's own codes inside.

Clients and the gateway speak ISO 639-1 ("pt"), as Whisper reports languages; NLLB-200
wants FLORES-200 codes ("por_Latn"), M2M100 language tokens ("__pt__") and multi-target
Marian models a ">>por<<" prefix token. Keeping every translation between these in one
table means a backend never guesses and an unknown code fails with the list of valid ones.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class UnknownLanguageError(ValueError):
    """A language code is not ISO 639-1 or not in the table; the message lists valid codes."""


@dataclass(frozen=True)
class Language:
    #: ISO 639-1 code, as on the wire.
    code: str
    #: English name, for messages.
    name: str
    #: ISO 639-3 code (the macrolanguage where there is one), as Marian prefix tokens use.
    iso639_3: str
    #: FLORES-200 code, as NLLB-200 uses.
    flores: str
    #: Other ISO 639-3 codes models use for the same language (individual languages of a
    #: macrolanguage, such as "cmn" for Chinese).
    aliases: tuple[str, ...] = ()


_TABLE = (
    Language("af", "Afrikaans", "afr", "afr_Latn"),
    Language("am", "Amharic", "amh", "amh_Ethi"),
    Language("ar", "Arabic", "ara", "arb_Arab", ("arb",)),
    Language("az", "Azerbaijani", "aze", "azj_Latn", ("azj",)),
    Language("be", "Belarusian", "bel", "bel_Cyrl"),
    Language("bg", "Bulgarian", "bul", "bul_Cyrl"),
    Language("bn", "Bengali", "ben", "ben_Beng"),
    Language("bs", "Bosnian", "bos", "bos_Latn"),
    Language("ca", "Catalan", "cat", "cat_Latn"),
    Language("cs", "Czech", "ces", "ces_Latn"),
    Language("cy", "Welsh", "cym", "cym_Latn"),
    Language("da", "Danish", "dan", "dan_Latn"),
    Language("de", "German", "deu", "deu_Latn"),
    Language("el", "Greek", "ell", "ell_Grek"),
    Language("en", "English", "eng", "eng_Latn"),
    Language("es", "Spanish", "spa", "spa_Latn"),
    Language("et", "Estonian", "est", "est_Latn", ("ekk",)),
    Language("eu", "Basque", "eus", "eus_Latn"),
    Language("fa", "Persian", "fas", "pes_Arab", ("pes", "prs")),
    Language("fi", "Finnish", "fin", "fin_Latn"),
    Language("fr", "French", "fra", "fra_Latn"),
    Language("ga", "Irish", "gle", "gle_Latn"),
    Language("gl", "Galician", "glg", "glg_Latn"),
    Language("gu", "Gujarati", "guj", "guj_Gujr"),
    Language("ha", "Hausa", "hau", "hau_Latn"),
    Language("he", "Hebrew", "heb", "heb_Hebr"),
    Language("hi", "Hindi", "hin", "hin_Deva"),
    Language("hr", "Croatian", "hrv", "hrv_Latn"),
    Language("hu", "Hungarian", "hun", "hun_Latn"),
    Language("hy", "Armenian", "hye", "hye_Armn"),
    Language("id", "Indonesian", "ind", "ind_Latn"),
    Language("is", "Icelandic", "isl", "isl_Latn"),
    Language("it", "Italian", "ita", "ita_Latn"),
    Language("ja", "Japanese", "jpn", "jpn_Jpan"),
    Language("ka", "Georgian", "kat", "kat_Geor"),
    Language("kk", "Kazakh", "kaz", "kaz_Cyrl"),
    Language("km", "Khmer", "khm", "khm_Khmr"),
    Language("kn", "Kannada", "kan", "kan_Knda"),
    Language("ko", "Korean", "kor", "kor_Hang"),
    Language("lt", "Lithuanian", "lit", "lit_Latn"),
    Language("lv", "Latvian", "lav", "lvs_Latn", ("lvs",)),
    Language("mk", "Macedonian", "mkd", "mkd_Cyrl"),
    Language("ml", "Malayalam", "mal", "mal_Mlym"),
    Language("mr", "Marathi", "mar", "mar_Deva"),
    Language("ms", "Malay", "msa", "zsm_Latn", ("zsm",)),
    Language("mt", "Maltese", "mlt", "mlt_Latn"),
    Language("my", "Burmese", "mya", "mya_Mymr"),
    Language("ne", "Nepali", "nep", "npi_Deva", ("npi",)),
    Language("nl", "Dutch", "nld", "nld_Latn"),
    Language("no", "Norwegian", "nor", "nob_Latn", ("nob", "nno")),
    Language("pa", "Punjabi", "pan", "pan_Guru"),
    Language("pl", "Polish", "pol", "pol_Latn"),
    Language("pt", "Portuguese", "por", "por_Latn"),
    Language("ro", "Romanian", "ron", "ron_Latn"),
    Language("ru", "Russian", "rus", "rus_Cyrl"),
    Language("si", "Sinhala", "sin", "sin_Sinh"),
    Language("sk", "Slovak", "slk", "slk_Latn"),
    Language("sl", "Slovenian", "slv", "slv_Latn"),
    Language("so", "Somali", "som", "som_Latn"),
    Language("sq", "Albanian", "sqi", "als_Latn", ("als",)),
    Language("sr", "Serbian", "srp", "srp_Cyrl"),
    Language("sv", "Swedish", "swe", "swe_Latn"),
    Language("sw", "Swahili", "swa", "swh_Latn", ("swh",)),
    Language("ta", "Tamil", "tam", "tam_Taml"),
    Language("te", "Telugu", "tel", "tel_Telu"),
    Language("th", "Thai", "tha", "tha_Thai"),
    Language("tl", "Tagalog", "tgl", "tgl_Latn"),
    Language("tr", "Turkish", "tur", "tur_Latn"),
    Language("uk", "Ukrainian", "ukr", "ukr_Cyrl"),
    Language("ur", "Urdu", "urd", "urd_Arab"),
    Language("uz", "Uzbek", "uzb", "uzn_Latn", ("uzn",)),
    Language("vi", "Vietnamese", "vie", "vie_Latn"),
    Language("xh", "Xhosa", "xho", "xho_Latn"),
    Language("yo", "Yoruba", "yor", "yor_Latn"),
    Language("zh", "Chinese", "zho", "zho_Hans", ("cmn",)),
    Language("zu", "Zulu", "zul", "zul_Latn"),
)

#: Every language the service knows, by ISO 639-1 code.
LANGUAGES: Mapping[str, Language] = {language.code: language for language in _TABLE}

_BY_ANY_CODE: Mapping[str, str] = {
    alias: language.code
    for language in _TABLE
    for alias in (language.code, language.iso639_3, *language.aliases)
}
_MARIAN_TOKEN = re.compile(r">>([A-Za-z]{2,3})(?:_[A-Za-z0-9]+)*<<")
_OPUS_MT_NAME = re.compile(r"opus-mt-(?:tc-(?:big|base)-)?(?P<source>[^-]+)-(?P<target>[^-]+)$")


def language(code: str) -> Language:
    """The language of a wire code; a region ("pt-BR") is accepted and ignored."""
    base = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    if base not in LANGUAGES:
        raise UnknownLanguageError(
            f"unknown language code {code!r}; expected an ISO 639-1 code, one of: "
            + ", ".join(LANGUAGES)
        )
    return LANGUAGES[base]


def from_model_code(model_code: str) -> str | None:
    """The ISO 639-1 code of a model's own code ("por", "pt_BR", "zho_Hans", ">>por<<"), or
    None for a code outside the table or a language group ("ROMANCE", "mul")."""
    match = _MARIAN_TOKEN.fullmatch(model_code)
    base = match.group(1) if match else re.split(r"[-_]", model_code, maxsplit=1)[0]
    return _BY_ANY_CODE.get(base.lower()) if len(base) in (2, 3) else None


def flores_code(code: str) -> str:
    """NLLB-200's code for an ISO 639-1 code: "pt" -> "por_Latn"."""
    return language(code).flores


def m2m100_code(code: str) -> str:
    """M2M100's language code (its tokenizer adds the "__pt__" underscores): ISO 639-1."""
    return language(code).code


def marian_target_tokens(vocabulary: Iterable[str]) -> dict[str, str]:
    """The ">>xx<<" target tokens of a multi-target Marian vocabulary, by ISO 639-1 code.

    Empty for a single-target model. Where several tokens mean one language (">>por<<",
    ">>pt_BR<<"), the first in vocabulary order wins.
    """
    tokens: dict[str, str] = {}
    for token in vocabulary:
        if _MARIAN_TOKEN.fullmatch(token) and (code := from_model_code(token)) is not None:
            tokens.setdefault(code, token)
    return tokens


def opus_mt_languages(model_name: str) -> tuple[list[str], list[str]]:
    """Source and target ISO 639-1 codes read from an opus-mt name ("opus-mt-en-de",
    "Helsinki-NLP/opus-mt-tc-big-en-pt", "opus-mt-en_el_es_fi-en_el_es_fi").

    A side that is a language group ("ROMANCE", "mul") or no opus-mt name at all gives an
    empty list: the caller has to learn that side elsewhere.
    """
    match = _OPUS_MT_NAME.search(model_name.rstrip("/").rsplit("/", 1)[-1])
    if match is None:
        return [], []
    return _codes(match.group("source")), _codes(match.group("target"))


def _codes(side: str) -> list[str]:
    codes = [from_model_code(part) for part in side.split("+" if "+" in side else "_")]
    if any(code is None for code in codes):
        return []
    return list(dict.fromkeys(code for code in codes if code is not None))
