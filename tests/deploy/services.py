"""The Dragoman services that the deployment files run, as the code defines them: each
one's settings and the gRPC service its health checks name; and the Redis (Valkey) their
gateways share caption rooms through. The image, compose and Kubernetes tests all hold
their files to these.
"""

import re
from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor
from pydantic_settings import BaseSettings

from dragoman.api.speech.v1 import speech_pb2
from dragoman.api.stt.v1 import stt_pb2
from dragoman.api.translate.v1 import translate_pb2
from dragoman.gateway.settings import GatewaySettings
from dragoman.stt.settings import SttSettings
from dragoman.translate.settings import TranslateSettings


@dataclass(frozen=True)
class DeployedService:
    settings: type[BaseSettings]
    proto: ServiceDescriptor

    @property
    def health_name(self) -> str:
        return self.proto.full_name

    @property
    def prefix(self) -> str:
        return self.settings.model_config["env_prefix"]


SERVICES = {
    "gateway": DeployedService(
        GatewaySettings, speech_pb2.DESCRIPTOR.services_by_name["SpeechService"]
    ),
    "stt": DeployedService(SttSettings, stt_pb2.DESCRIPTOR.services_by_name["SttService"]),
    "translate": DeployedService(
        TranslateSettings, translate_pb2.DESCRIPTOR.services_by_name["TranslateService"]
    ),
}
"""By the name every deployment gives the service."""


REDIS = "redis"
"""The name compose and Kubernetes give the Redis (Valkey) the gateways keep rooms in."""
REDIS_PORT = 6379
"""Where valkey-server (like redis-server) listens unless given `--port`."""
REDIS_CLI_PING = ["valkey-cli", "-e", "ping"]
"""Both health checks: `-e` makes an error reply (LOADING, NOAUTH) fail, as a refused
connection does; without it the CLI prints the error and exits 0."""


def server_options(command: list[str]) -> dict[str, str]:
    """`valkey-server --name value ...`, the command line compose and Kubernetes give Redis,
    as {name: value}."""
    program, *arguments = command
    assert program == "valkey-server", command
    options: dict[str, str] = {}
    while arguments:
        name, *arguments = arguments
        assert name.startswith("--"), command
        assert name[2:] not in options, command
        value = arguments.pop(0) if arguments and not arguments[0].startswith("--") else ""
        options[name[2:]] = value
    return options


def listens_on(options: dict[str, str]) -> int:
    return int(options.get("port", REDIS_PORT))


def redis_bytes(size: str) -> int:
    """A Redis memory size (`384mb`, `1gb`, `100000k`); `mb` is MiB, `m` is 10^6."""
    match = re.fullmatch(r"(\d+)(|k|kb|m|mb|g|gb)", size.lower())
    assert match, size
    units = {"": 1, "k": 10**3, "kb": 2**10, "m": 10**6, "mb": 2**20, "g": 10**9, "gb": 2**30}
    return int(match.group(1)) * units[match.group(2)]
