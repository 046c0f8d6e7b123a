"""Hugging Face seq2seq translation models: Marian/opus-mt, NLLB-200 and M2M100.

The three families differ only in how a request names its languages: a Marian model
serves fixed pairs (a multi-target one wants a ">>por<<" token before the text), NLLB and
M2M100 take the source language on the tokenizer and force the target language as the
first generated token. `_Model` hides that, so one backend can hold several models and
route each pair to the first that serves it. torch and transformers are imported here
only, so a replica configured for Bergamot alone runs without them.
"""

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import torch
import transformers

from dragoman.translate import languages
from dragoman.translate.backends.base import BackendError

logger = logging.getLogger(__name__)

NAME = "transformers"

Family = Literal["marian", "nllb", "m2m100"]

#: Generated tokens allowed per input token (plus a constant), which bounds the decode of a
#: model that never emits end-of-sequence; translations rarely double in length.
_MAX_NEW_TOKENS_PER_INPUT_TOKEN = 2
_MAX_NEW_TOKENS_EXTRA = 16


def resolve_device(device: str) -> str:
    """`auto` is CUDA when torch sees a GPU, else CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@dataclass(frozen=True)
class _Languages:
    #: ISO 639-1 codes the model reads and writes.
    sources: list[str]
    targets: list[str]
    #: ISO 639-1 code -> the ">>xx<<" token a multi-target Marian model wants first.
    marian_prefixes: dict[str, str]

    def pairs(self) -> list[tuple[str, str]]:
        return [
            (source, target)
            for source in self.sources
            for target in self.targets
            if source != target
        ]


class _Model:
    """One loaded model and how to ask it for a language pair."""

    def __init__(self, name: str, device: str) -> None:
        self.name = name
        self.device = device
        try:
            with warnings.catch_warnings():
                # MarianTokenizer warns when sacremoses is missing; it only normalises
                # punctuation, and the warning would fail strict callers.
                warnings.filterwarnings("ignore", message=".*sacremoses", category=UserWarning)
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(name)
            self.model = transformers.AutoModelForSeq2SeqLM.from_pretrained(name)
        except (OSError, ValueError) as error:
            raise BackendError(
                f"cannot load transformers model {name!r}: {error}; give a local model "
                "directory, or a hub id with network"
            ) from error
        # Half precision on GPU halves memory and speeds up decoding. Cast after loading:
        # the load-time dtype keyword differs between transformers 4 and 5.
        self.model.to(device, dtype=torch.float16 if device == "cuda" else torch.float32).eval()
        #: Decoder positions the model has embeddings for; a longer decode would fail.
        self._max_positions: int = self.model.config.max_position_embeddings
        self.family = _family(name, self.model.config.model_type, self.tokenizer)
        self.languages = _languages(self.family, name, self.tokenizer)
        if not self.languages.pairs():
            raise BackendError(
                f"transformers model {name!r} ({self.family}) serves no language pair this "
                f"service knows; known codes: {', '.join(languages.LANGUAGES)}"
            )
        logger.info(
            "transformers model %s loaded: %s on %s, %d pairs",
            name,
            self.family,
            device,
            len(self.languages.pairs()),
        )

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        generate_options: dict[str, Any] = {}
        if self.family == "marian":
            prefix = self.languages.marian_prefixes.get(target)
            if prefix is not None:
                texts = [f"{prefix} {text}" for text in texts]
        elif self.family == "nllb":
            self.tokenizer.src_lang = languages.flores_code(source)
            generate_options["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(
                languages.flores_code(target)
            )
        else:
            self.tokenizer.src_lang = languages.m2m100_code(source)
            generate_options["forced_bos_token_id"] = self.tokenizer.get_lang_id(
                languages.m2m100_code(target)
            )
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True).to(
            self.device
        )
        input_tokens = inputs["input_ids"].shape[1]
        max_new_tokens = input_tokens * _MAX_NEW_TOKENS_PER_INPUT_TOKEN + _MAX_NEW_TOKENS_EXTRA
        with torch.inference_mode():
            generated = self.model.generate(
                **inputs,
                **generate_options,
                max_new_tokens=min(max_new_tokens, self._max_positions),
            )
        return self.tokenizer.batch_decode(generated, skip_special_tokens=True)


class TransformersBackend:
    """Several models behind one name; a pair goes to the first model listed that serves it."""

    name = NAME

    def __init__(self, model_names: list[str], device: str = "auto") -> None:
        resolved = resolve_device(device)
        self._models = [_Model(model_name, resolved) for model_name in model_names]
        self._routes: dict[tuple[str, str], _Model] = {}
        for model in self._models:
            for pair in model.languages.pairs():
                self._routes.setdefault(pair, model)

    def pairs(self) -> list[tuple[str, str]]:
        return list(self._routes)

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        return self._routes[(source, target)].translate(texts, source, target)


def _family(name: str, model_type: str, tokenizer: Any) -> Family:
    if model_type == "marian":
        return "marian"
    if model_type in ("nllb-moe", "m2m_100"):
        is_nllb = "nllb" in name.lower() or "nllb" in type(tokenizer).__name__.lower()
        return "nllb" if model_type == "nllb-moe" or is_nllb else "m2m100"
    raise BackendError(
        f"transformers model {name!r} has model_type {model_type!r}; expected a Marian "
        "(opus-mt), NLLB-200 or M2M100 seq2seq model"
    )


def _languages(family: Family, name: str, tokenizer: Any) -> _Languages:
    if family == "nllb":
        unknown_id = tokenizer.unk_token_id
        codes = [
            code
            for code, language in languages.LANGUAGES.items()
            if tokenizer.convert_tokens_to_ids(language.flores) != unknown_id
        ]
        return _Languages(codes, codes, {})
    if family == "m2m100":
        codes = [code for code in languages.LANGUAGES if code in tokenizer.lang_code_to_id]
        return _Languages(codes, codes, {})
    return _marian_languages(name, tokenizer)


def _marian_languages(name: str, tokenizer: Any) -> _Languages:
    """Languages from the tokenizer's source_lang/target_lang when saved, else from the
    opus-mt name; a multi-target model's targets are the ">>xx<<" tokens in its vocabulary."""
    named_sources, named_targets = languages.opus_mt_languages(name)
    sources = _known(getattr(tokenizer, "source_lang", None)) or named_sources
    prefixes = languages.marian_target_tokens(tokenizer.get_vocab())
    targets = list(prefixes) or _known(getattr(tokenizer, "target_lang", None)) or named_targets
    if not sources or not targets:
        raise BackendError(
            f"cannot tell which languages Marian model {name!r} translates: name it "
            "opus-mt-<source>-<target> or save its tokenizer with source_lang and target_lang"
        )
    return _Languages(sources, targets, prefixes)


def _known(model_code: str | None) -> list[str]:
    code = languages.from_model_code(model_code) if model_code else None
    return [code] if code is not None else []
