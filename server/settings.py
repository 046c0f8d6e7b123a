"""Settings of the gateway, from flags and `DRAGOMAN_GATEWAY_*` variables, by concern.

Each group is what one part of the gateway takes as it is: the stream limits, the VAD
defaults a client's config falls back on, the interim and final policies, the backends,
the caption rooms, Redis, resuming, auth and TLS.
"""

import grpc
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dragoman.auth import AuthSettings
from dragoman.serving import KiB, MiB
from dragoman.settings import ServiceSettings, SettingsGroup
from dragoman.tls import ServerTlsSettings, channel_credentials


class StreamLimits(SettingsGroup):
    """The limits every stream and message of this gateway keeps."""

    max_message_bytes: int = Field(
        4 * MiB,
        gt=0,
        description="Largest gRPC message accepted; larger ones get RESOURCE_EXHAUSTED from gRPC "
        "(a Recognize request carries the whole file, so this bounds its length)",
    )
    max_chunk_bytes: int = Field(
        1 * MiB,
        gt=0,
        description="Largest audio chunk in a StreamingRecognize message; larger gets "
        "INVALID_ARGUMENT",
    )
    max_streams: int = Field(
        64,
        gt=0,
        description="Concurrent streams (gRPC and WebSocket) this gateway takes; more get "
        "RESOURCE_EXHAUSTED",
    )
    max_stream_s: float = Field(
        4 * 3600.0,
        gt=0,
        description="Longest stream, in seconds of audio; longer gets OUT_OF_RANGE after the "
        "final result of the utterance in progress",
    )
    idle_timeout_s: float = Field(
        60.0,
        gt=0,
        description="A stream that sends no audio for this long gets OUT_OF_RANGE",
    )
    max_speedup: float = Field(
        10.0,
        gt=0,
        description="How many times faster than real time a stream's audio is read, after the "
        "burst below; a faster sender is held back by flow control, never refused",
    )
    speedup_burst_s: float = Field(
        30.0,
        ge=0,
        description="Seconds of audio a stream may send ahead of that pace before it is held "
        "back (a client's buffer, the start of a file sent at once)",
    )
    stream_window_bytes: int = Field(
        64 * KiB,
        ge=16 * KiB,
        description="HTTP/2 flow-control window of each stream on the gRPC port: the most a "
        "sender held back to max_speedup has in flight to this gateway (64 KiB is 2 s of "
        "16 kHz audio); larger speeds up uploads over long round trips",
    )


class VadDefaults(SettingsGroup):
    """What a client's VoiceActivityConfig gets for a field it leaves unset, and the range
    a value it sets must keep."""

    vad_aggressiveness: int = Field(2, ge=0, le=3, description="Default webrtcvad gate, 0-3")
    vad_speech_threshold: float = Field(
        0.5, gt=0, lt=1, description="Default Silero probability that confirms speech"
    )
    endpoint_silence_s: float = Field(
        0.6, ge=0.1, le=5, description="Default silence that ends an utterance, in seconds"
    )
    pre_speech_s: float = Field(
        1.0, ge=0, le=2, description="Default audio kept before speech starts, in seconds"
    )
    max_utterance_s: float = Field(
        15.0, ge=1, le=30, description="Default longest utterance before a forced final, seconds"
    )
    min_speech_s: float = Field(
        0.15, ge=0, le=1, description="Default shortest speech that starts an utterance, seconds"
    )


class InterimSettings(SettingsGroup):
    """When interim transcriptions are made, and how much of the STT service they may take."""

    interim_interval_s: float = Field(
        1.0,
        gt=0,
        description="Most time between two interim transcriptions of speech, while the STT "
        "service keeps up",
    )
    first_interim_s: float = Field(
        0.3,
        ge=0,
        description="Speech an utterance needs before its first interim transcription",
    )
    interim_duty_cycle: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Largest share of time a stream's interim transcriptions may occupy the "
        "STT service; the rest is kept free so that finals start at once",
    )


class FinalSettings(SettingsGroup):
    """How final transcriptions are made and retried."""

    final_persist_s: float = Field(
        20.0,
        ge=0,
        description="How long a final transcription is retried, with backoff, while the STT "
        "service is overloaded (interims are dropped at once); then the stream ends with "
        "RESOURCE_EXHAUSTED naming the utterance",
    )
    condition_on_previous: bool = Field(
        False,
        description="Give the previous final transcript of the stream to Whisper as a prompt "
        "(off: on the test clips it raised the WER of tiny.en from 0.042 to 0.048)",
    )


class BackendSettings(SettingsGroup):
    """Where the STT and translation services are, how to reach them, how long to wait."""

    stt_target: str = Field(
        "127.0.0.1:50052",
        description="gRPC target of the STT service (host:port, or dns:///name:port to "
        "balance over every address the name resolves to)",
    )
    translate_target: str = Field(
        "",
        description="gRPC target of the translation service; empty: only Whisper's "
        "speech-to-English and same-language targets are served",
    )
    backend_tls_ca_file: str = Field(
        "",
        description="PEM CA of the STT and translation services' certificates: TLS on the "
        "internal hops; empty: plaintext",
    )
    backend_tls_cert_file: str = Field(
        "", description="PEM client certificate for the internal hops, when they want mutual TLS"
    )
    backend_tls_key_file: str = Field("", description="PEM key of that client certificate")
    stt_timeout_s: float = Field(30.0, gt=0, description="Deadline of one STT call, in seconds")
    translate_timeout_s: float = Field(
        30.0, gt=0, description="Deadline of one translation call, in seconds"
    )

    def credentials(self) -> grpc.ChannelCredentials | None:
        """The channels' TLS (None: plaintext)."""
        return channel_credentials(
            self.backend_tls_ca_file, self.backend_tls_cert_file, self.backend_tls_key_file
        )


class RoomSettings(SettingsGroup):
    """Caption rooms: what a listener gets and how long a room is kept."""

    caption_backlog: int = Field(
        20, ge=0, description="Final results of a caption room replayed to a listener who joins"
    )
    caption_history: int = Field(
        1000,
        ge=1,
        description="Final results a caption room keeps, for listeners who resume after a "
        "position (Redis trims approximately, so a few more may be kept)",
    )
    caption_room_ttl_s: float = Field(
        24 * 3600.0,
        gt=0,
        description="A caption room with no new caption and no listener for this long is forgotten",
    )
    caption_language_ttl_s: float = Field(
        15.0,
        ge=1,
        description="How long a gateway's listened languages stay in a room after it stops "
        "renewing them (it renews them every third of this while its listeners are there)",
    )
    caption_listener_queue: int = Field(
        256,
        gt=0,
        description="Captions a listener may fall behind before it is cut off with "
        "RESOURCE_EXHAUSTED (interim captions are dropped first)",
    )


class RedisSettings(SettingsGroup):
    """The Redis that gateways share."""

    redis_url: str = Field(
        "",
        description="Redis (or Valkey) that holds the caption rooms and the resumable "
        "sessions, shared by every gateway that points at it (redis://host:6379/0, rediss:// "
        "for TLS); empty: both live in this gateway's memory",
    )
    redis_timeout_s: float = Field(
        1.0, gt=0, description="Deadline of one Redis command; past it the room store is down"
    )


class ResumePolicy(SettingsGroup):
    """How a stream whose connection broke is kept for its client to resume."""

    resume_grace_s: float = Field(
        30.0,
        ge=0,
        description="How long a LINEAR16 stream whose connection broke is kept for its client "
        "to resume it (its finals are held meanwhile); 0: streams do not resume",
    )
    resume_max_responses: int = Field(
        1000,
        ge=16,
        description="Responses a session keeps for a client that resumes; one that missed "
        "more gets OUT_OF_RANGE",
    )
    resume_check_s: float = Field(
        10.0,
        ge=0,
        description="Seconds of received audio a session keeps to check the audio a resuming "
        "client resends",
    )
    resume_max_per_minute: int = Field(
        20,
        ge=1,
        description="Resumes of one session allowed per minute; more get RESOURCE_EXHAUSTED",
    )


class GatewaySettings(ServiceSettings):
    """The public API server: where it listens, and a group per concern."""

    model_config = SettingsConfigDict(env_prefix="DRAGOMAN_GATEWAY_")

    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 for all")
    port: int = Field(50051, ge=0, le=65535, description="Port to listen on; 0 picks a free one")
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="Port of the Prometheus /metrics endpoint; 0 picks one"
    )
    http_port: int = Field(
        8081,
        ge=0,
        le=65535,
        description="Port of the HTTP server with the WebSocket bridge (/ws/v1/recognize) and "
        "the web page (/), behind Envoy; 0 picks a free one",
    )
    web_root: str = Field(
        "",
        description="Folder of the web page served at /; empty: the page the `dragoman` command "
        "carries (clients/web/dist, built by `make web`)",
    )
    drain_grace_s: float = Field(
        10.0, ge=0, description="On SIGTERM, how long streams in flight may take to finish"
    )
    limits: StreamLimits = Field(default_factory=StreamLimits)
    vad: VadDefaults = Field(default_factory=VadDefaults)
    interims: InterimSettings = Field(default_factory=InterimSettings)
    finals: FinalSettings = Field(default_factory=FinalSettings)
    backends: BackendSettings = Field(default_factory=BackendSettings)
    rooms: RoomSettings = Field(default_factory=RoomSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    resume: ResumePolicy = Field(default_factory=ResumePolicy)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tls: ServerTlsSettings = Field(default_factory=ServerTlsSettings)
