"""Settings of the STT service, from `DRAGOMAN_STT_*` variables and `dragoman stt` flags."""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from dragoman.serving import MiB
from dragoman.settings import BackendServerSettings, ServiceSettings
from dragoman.stt.windows import WindowMode, WindowPolicy
from dragoman.tls import ServerTlsSettings

_WINDOWS = WindowPolicy()


class SttSettings(ServiceSettings, BackendServerSettings):
    """One replica of the STT service: where it listens, which models it serves, how hard."""

    model_config = SettingsConfigDict(env_prefix="DRAGOMAN_STT_")

    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 for all.")
    port: int = Field(50052, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    metrics_port: int = Field(
        9465, ge=0, le=65535, description="Port of the Prometheus /metrics endpoint; 0 picks one."
    )
    model: str = Field(
        "tiny.en",
        description=(
            "Default model: 'tiny.en' or 'base' (shipped, offline), a path to a CTranslate2 "
            "Whisper directory, or a Hugging Face Hub id (needs network)."
        ),
    )
    preload: str = Field(
        "",
        description="Comma-separated extra models to load at start, named as for --model.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where models run; auto = CUDA when a GPU is visible, else CPU."
    )
    compute_type: Literal[
        "auto",
        "int8",
        "int8_float16",
        "int8_float32",
        "int8_bfloat16",
        "float16",
        "bfloat16",
        "float32",
    ] = Field("auto", description="CTranslate2 compute type; auto = float16 on CUDA, int8 on CPU.")
    cpu_threads: int = Field(0, ge=0, description="CPU threads per model; 0 = all cores.")
    model_cache_dir: Path = Field(
        Path("~/.cache/dragoman/models"),
        validate_default=True,
        description="Directory for joined and downloaded models; '~' expands to the home.",
    )
    final_beam_size: int = Field(5, ge=1, description="Beam width for final transcriptions.")
    interim_beam_size: int = Field(
        1, ge=1, description="Beam width for interim transcriptions; 1 = greedy."
    )
    max_queue: int = Field(
        64, ge=1, description="Requests waiting for a model, at most; more are refused."
    )
    window: WindowMode = Field(
        _WINDOWS.mode,
        description="Encoder window of a request: 'fitted' to its audio (plus the margin, at "
        "least the minimum below; a decode that loops or runs on is done again in 30 s) or "
        "'full' (Whisper's 30 s for every request).",
    )
    window_min_s: float = Field(
        _WINDOWS.min_s, ge=1, le=30, description="Shortest fitted window, in seconds."
    )
    window_margin_s: float = Field(
        _WINDOWS.margin_s,
        ge=0,
        le=5,
        description="Least silence after the audio in a fitted window.",
    )
    window_margin_share: float = Field(
        _WINDOWS.margin_share,
        ge=0,
        le=2,
        description="Silence after the audio in a fitted window as a share of the audio's "
        "length, where that is more than the margin (Whisper drops a last phrase that ends "
        "near the end of its window).",
    )
    max_batch_size: int = Field(
        8, ge=1, description="Requests decoded together in one model call, at most."
    )
    batch_wait_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="How long the first waiting request waits for others to share its call.",
    )
    max_message_bytes: int = Field(
        4 * MiB, ge=MiB, description="Largest gRPC message in bytes (30 s of audio is 0.96 MB)."
    )
    drain_grace_s: float = Field(
        10.0, ge=0, description="Seconds that calls in flight get to finish on shutdown."
    )
    tls: ServerTlsSettings = Field(default_factory=ServerTlsSettings)

    @field_validator("model_cache_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a model, e.g. 'tiny.en' or 'base'")
        return value.strip()

    @property
    def windows(self) -> WindowPolicy:
        return WindowPolicy(
            mode=self.window,
            min_s=self.window_min_s,
            margin_s=self.window_margin_s,
            margin_share=self.window_margin_share,
        )

    @property
    def model_names(self) -> list[str]:
        """The default model first, then the preloaded ones, each once."""
        extra = [name.strip() for name in self.preload.split(",") if name.strip()]
        return list(dict.fromkeys([self.model, *extra]))
