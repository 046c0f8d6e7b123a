"""Fixtures for the translation service: real replicas on loopback, one per backend setup.

No MarianMT weights can be downloaded here, so the transformers backend is exercised with
a tiny randomly initialised Marian model built offline: its translations are noise, but
every step from the wire through tokenizer, generate and decode is the real one.
"""

import itertools
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sentencepiece
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from transformers import MarianConfig, MarianMTModel

from dragoman.api.translate.v1 import translate_pb2, translate_pb2_grpc
from dragoman.interfaces import TRANSLATE_SERVICE_NAME
from dragoman.translate.app import TranslateApp
from dragoman.translate.settings import TranslateSettings

#: The tiny model's multi-target tokens: it serves en->pt and en->es.
TARGET_TOKENS = (">>por<<", ">>spa<<")
_SUBJECTS = (
    "the cat",
    "my friend",
    "a teacher",
    "the old man",
    "our neighbour",
    "she",
    "he",
    "the doctor",
    "my sister",
    "a young farmer",
    "the children",
    "your brother",
)
_VERBS = (
    "sees",
    "likes",
    "reads",
    "finds",
    "buys",
    "wants",
    "opens",
    "carries",
    "cooks",
    "paints",
    "sells",
    "forgets",
    "washes",
    "writes",
    "remembers",
)
_OBJECTS = (
    "a book",
    "the door",
    "some bread",
    "a red car",
    "the letter",
    "two apples",
    "a blue window",
    "the yellow boat",
    "fresh fish",
    "a small garden",
    "warm soup",
    "the heavy box",
    "an orange",
    "quiet music",
    "the kitchen table",
)
_ENDINGS = (
    "today",
    "every morning",
    "in the park",
    "at home",
    "again",
    "before lunch",
    "near the river",
    "during winter",
    "with great care",
    "on sunday",
)


def corpus() -> list[str]:
    """A few hundred short sentences, enough to train a 200-piece vocabulary."""
    return [
        f"{subject} {verb} {obj} {ending}.".capitalize()
        for subject, verb, obj, ending in itertools.product(_SUBJECTS, _VERBS, _OBJECTS, _ENDINGS)
    ][::61]


def build_tiny_marian(directory: Path, target_tokens: tuple[str, ...] = TARGET_TOKENS) -> Path:
    """Writes a random Marian model and its tokenizer files (source.spm, target.spm,
    vocab.json) as `save_pretrained` would, with Marian's own vocabulary conventions:
    </s> is 0, <unk> 1, <pad> last and also the decoder start token. Without target tokens
    its one pair comes from the directory's opus-mt name."""
    directory.mkdir(parents=True)
    text_file = directory / "corpus.txt"
    text_file.write_text("\n".join(corpus()) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(text_file),
        model_prefix=str(directory / "spm"),
        vocab_size=200,
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    processor = sentencepiece.SentencePieceProcessor(model_file=str(directory / "spm.model"))
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    tokens = [
        "</s>",
        "<unk>",
        *target_tokens,
        *(p for p in pieces if p not in ("<unk>", "<s>", "</s>")),
        "<pad>",
    ]
    vocab = {token: index for index, token in enumerate(tokens)}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    for name in ("source.spm", "target.spm"):
        shutil.copy(directory / "spm.model", directory / name)
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "MarianTokenizer", "model_max_length": 128})
    )
    pad_id = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        pad_token_id=pad_id,
        eos_token_id=vocab["</s>"],
        decoder_start_token_id=pad_id,
        forced_eos_token_id=vocab["</s>"],
        init_std=0.5,
    )
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(directory)
    return directory


@dataclass
class Replica:
    app: TranslateApp
    channel: grpc.Channel

    @property
    def stub(self) -> translate_pb2_grpc.TranslateServiceStub:
        return translate_pb2_grpc.TranslateServiceStub(self.channel)

    def health(self) -> int:
        request = health_pb2.HealthCheckRequest(service=TRANSLATE_SERVICE_NAME)
        return health_pb2_grpc.HealthStub(self.channel).Check(request).status

    def translate(
        self, texts: list[str], source: str, target: str, backend: str = ""
    ) -> translate_pb2.TranslateResponse:
        return self.stub.Translate(
            translate_pb2.TranslateRequest(
                texts=texts,
                source_language_code=source,
                target_language_code=target,
                backend=backend,
            )
        )


def settings(**overrides: object) -> TranslateSettings:
    return TranslateSettings(port=0, metrics_port=0, drain_grace_s=1.0, **overrides)


def running(loop_thread, app: TranslateApp) -> Iterator[Replica]:
    loop_thread.run(app.start())
    try:
        loop_thread.run(app.wait_ready())
        with grpc.insecure_channel(app.address) as channel:
            yield Replica(app, channel)
    finally:
        loop_thread.run(app.stop())


@pytest.fixture(scope="session")
def tiny_marian_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Named like an opus-mt model whose targets are a group, so the source language comes
    from the name and the targets from the vocabulary's >>xx<< tokens."""
    return build_tiny_marian(tmp_path_factory.mktemp("models") / "opus-mt-en-ROMANCE")


@pytest.fixture(scope="session")
def bergamot_replica(loop_thread) -> Iterator[Replica]:
    yield from running(loop_thread, TranslateApp(settings()))


@pytest.fixture(scope="session")
def marian_replica(loop_thread, tiny_marian_dir: Path) -> Iterator[Replica]:
    """Both backends, bergamot first; a window long enough that concurrent test requests
    reliably share a batch."""
    app = TranslateApp(
        settings(
            backends="bergamot,transformers",
            transformers_models=str(tiny_marian_dir),
            device="cpu",
            max_batch_size=8,
            batch_window_ms=200,
            max_texts=10,
            max_text_chars=100,
        )
    )
    yield from running(loop_thread, app)
