"""The Dragoman services that the deployment files run, as the code defines them: each
one's settings and the gRPC service its health checks name. The image, compose and
Kubernetes tests all hold their files to these.
"""

from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor
from pydantic_settings import BaseSettings

from dragoman.speech.v1 import speech_pb2
from dragoman.stt.v1 import stt_pb2
from dragoman.translate.v1 import translate_pb2
from server.settings import GatewaySettings
from stt.settings import SttSettings
from translate.settings import TranslateSettings


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
