"""Settings of the translation service, from `DRAGOMAN_TRANSLATE_*` variables and flags."""

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from dragoman.serving import MiB
from dragoman.settings import BackendServerSettings, ServiceSettings
from dragoman.tls import ServerTlsSettings

#: Backend names, in the order they are tried when a request names none.
BACKEND_NAMES = ("bergamot", "transformers")


def _split(value: str) -> list[str]:
    return list(dict.fromkeys(item.strip() for item in value.split(",") if item.strip()))


class TranslateSettings(ServiceSettings, BackendServerSettings):
    """One replica of the translation service: where it listens, what it serves, how hard."""

    model_config = SettingsConfigDict(env_prefix="DRAGOMAN_TRANSLATE_")

    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 for all.")
    port: int = Field(50053, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    metrics_port: int = Field(
        9466, ge=0, le=65535, description="Port of the Prometheus /metrics endpoint; 0 picks one."
    )
    backends: str = Field(
        "bergamot",
        description=(
            "Comma-separated backends to load, tried in this order when a request names none: "
            "bergamot (offline en<->pt), transformers (the models in --transformers-models)."
        ),
    )
    transformers_models: str = Field(
        "",
        validate_default=True,
        description=(
            "Comma-separated local model directories or Hugging Face Hub ids (hub needs "
            "network), each a Marian/opus-mt, NLLB-200 or M2M100 seq2seq model."
        ),
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where transformers models run; auto = CUDA when visible, else CPU."
    )
    max_batch_size: int = Field(
        16, ge=1, description="Texts per model call, at most (one request may exceed it alone)."
    )
    batch_window_ms: float = Field(
        5.0,
        ge=0,
        description="Milliseconds a request waits for concurrent ones to share its batch.",
    )
    max_queue: int = Field(
        256, ge=1, description="Requests waiting for a model, at most; more are refused."
    )
    max_text_chars: int = Field(2000, ge=1, description="Characters per text, at most.")
    max_texts: int = Field(64, ge=1, description="Texts per request, at most.")
    max_message_bytes: int = Field(4 * MiB, ge=MiB, description="Largest gRPC message in bytes.")
    drain_grace_s: float = Field(
        10.0, ge=0, description="Seconds that calls in flight get to finish on shutdown."
    )
    tls: ServerTlsSettings = Field(default_factory=ServerTlsSettings)

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, value: str) -> str:
        names = _split(value)
        if not names:
            raise ValueError(
                "name at least one backend; expected some of: " + ", ".join(BACKEND_NAMES)
            )
        unknown = [name for name in names if name not in BACKEND_NAMES]
        if unknown:
            raise ValueError(
                f"unknown backend {', '.join(unknown)}; expected some of: "
                + ", ".join(BACKEND_NAMES)
            )
        return value

    @field_validator("transformers_models")
    @classmethod
    def _transformers_has_models(cls, value: str, info: ValidationInfo) -> str:
        """Checked on this field, after `backends`, so the error names the flag to set."""
        if "transformers" in _split(info.data.get("backends", "")) and not _split(value):
            raise ValueError(
                "backend 'transformers' needs at least one model directory or hub id, such as "
                "Helsinki-NLP/opus-mt-en-de"
            )
        return value

    @property
    def backend_names(self) -> list[str]:
        return _split(self.backends)

    @property
    def transformers_model_names(self) -> list[str]:
        return _split(self.transformers_models)
