"""Settings of the local stacks' own parts: Envoy, and the replicas of `dragoman stack`.

They live apart from the code they configure so that every image's `dragoman` command
lists, validates and documents them without the extras that code needs.
"""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EdgeSettings(BaseSettings):
    """Envoy of the local stack (`dragoman serve` and `demo`)."""

    model_config = SettingsConfigDict(env_prefix="DRAGOMAN_EDGE_")

    enabled: bool = Field(
        True, description="Start Envoy in front of the gateway (gRPC, gRPC-Web, WebSocket, page)"
    )
    host: str = Field("127.0.0.1", description="Address Envoy listens on; 0.0.0.0 for all")
    port: int = Field(8080, ge=0, le=65535, description="Envoy's public port; 0 picks a free one")
    admin_port: int = Field(
        9901, ge=0, le=65535, description="Envoy's admin port, on loopback only; 0 picks one"
    )
    config: str = Field(
        "", description="Envoy configuration to start from; empty: deploy/envoy.yaml"
    )
    log_level: str = Field(
        "warning",
        pattern="^(trace|debug|info|warning|error|critical|off)$",
        description="Envoy's log level",
    )
    ready_timeout_s: float = Field(30.0, gt=0, description="How long Envoy may take to be ready")


class TopologySettings(BaseSettings):
    """How many replicas `dragoman stack` runs of each service, and its Redis."""

    model_config = SettingsConfigDict(env_prefix="DRAGOMAN_STACK_")

    gateways: int = Field(
        2,
        ge=1,
        le=16,
        description="Gateway processes behind Envoy, sharing caption rooms through Redis (the "
        "first on the configured ports, the others on free ones)",
    )
    redis_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the stack's own redis-server on loopback (0 picks a free one); "
        "unused when the gateways are given a Redis URL",
    )
    stt_replicas: int = Field(2, ge=1, le=32, description="STT service processes")
    translate_replicas: int = Field(1, ge=1, le=32, description="Translation service processes")
    start_timeout_s: float = Field(
        300.0, gt=0, description="How long every service together may take to turn SERVING"
    )
    restart_backoff_max_s: float = Field(
        30.0, gt=0, description="Longest wait before a replica that died is started again"
    )
