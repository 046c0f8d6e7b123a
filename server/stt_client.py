"""The gateway's client of the STT service.

One channel for all streams, balanced over the replicas (see `server.channels`).
"""

import asyncio
import logging
import random
import time
from dataclasses import dataclass

import grpc
import numpy as np

from dragoman.api.stt.v1 import stt_pb2, stt_pb2_grpc
from dragoman.errors import InvalidRequestError
from dragoman.gateway.channels import BackendClient
from dragoman.gateway.errors import OverloadedError, from_backend
from dragoman.interfaces import STT_SERVICE_NAME

logger = logging.getLogger(__name__)

OVERLOAD_BACKOFF_S = 0.1
MAX_OVERLOAD_BACKOFF_S = 2.0


@dataclass(frozen=True)
class ModelCatalog:
    """The models the STT service serves, with the languages each recognizes, to validate a
    stream's config before it starts."""

    models: dict[str, stt_pb2.ModelInfo]
    default: str

    def resolve(self, name: str, language_code: str) -> stt_pb2.ModelInfo:
        """The model for a stream; raises InvalidRequestError naming the valid choices."""
        chosen = name or self.default
        info = self.models.get(chosen)
        if info is None:
            raise InvalidRequestError(
                f"model {chosen!r} is not served: valid values are {', '.join(sorted(self.models))}"
            )
        recognized = info.language_codes
        if language_code and recognized and language_code not in recognized:
            others = [
                m for m, i in sorted(self.models.items()) if language_code in i.language_codes
            ]
            raise InvalidRequestError(
                f"language_code {language_code!r} is not recognized by the "
                f"{'English-only ' if info.english_only else ''}model {chosen!r}: valid values "
                f"are {', '.join(sorted(recognized))}, or 'auto'"
                + (f"; models that recognize it: {', '.join(others)}" if others else "")
            )
        return info


def pcm16(audio: np.ndarray) -> bytes:
    """float32 in [-1, 1] to little-endian 16-bit PCM, the STT wire format."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class SttClient(BackendClient):
    """Calls the STT service; backend failures become the gateway's domain errors."""

    service_name = STT_SERVICE_NAME
    stub_class = stt_pb2_grpc.SttServiceStub
    _stub: stt_pb2_grpc.SttServiceStub
    _catalog: ModelCatalog | None = None

    async def catalog(self, *, refresh: bool = False) -> ModelCatalog:
        """The served models, asked once and remembered; asked again on `refresh` or while
        the STT service has no model loaded yet."""
        if refresh or self._catalog is None or not self._catalog.default:
            try:
                response = await self._stub.ListModels(
                    stt_pb2.ListModelsRequest(), timeout=self._timeout_s
                )
            except grpc.aio.AioRpcError as error:
                raise from_backend(error, "speech-to-text") from error
            models = {m.name: m for m in response.models}
            default = next((m.name for m in response.models if m.is_default), "")
            self._catalog = ModelCatalog(models=models, default=default)
        return self._catalog

    async def resolve(self, name: str, language_code: str) -> stt_pb2.ModelInfo:
        """The model for a stream, asking the service again for a name not seen yet (a
        replica may have loaded more models since)."""
        catalog = await self.catalog()
        if (name or catalog.default) not in catalog.models:
            catalog = await self.catalog(refresh=True)
        return catalog.resolve(name, language_code)

    async def transcribe(
        self, request: stt_pb2.TranscribeRequest, *, persist_s: float = 0.0
    ) -> stt_pb2.TranscribeResponse:
        """One transcription. An overloaded STT service (its queue full) is asked again with
        backoff for up to `persist_s`: finals persist, interims (0) give way at once."""
        deadline = time.monotonic() + persist_s
        backoff_s = OVERLOAD_BACKOFF_S
        while True:
            try:
                return await self._stub.Transcribe(request, timeout=self._timeout_s)
            except grpc.aio.AioRpcError as error:
                failure = from_backend(error, "speech-to-text")
            if not isinstance(failure, OverloadedError) or time.monotonic() + backoff_s > deadline:
                raise failure
            logger.info("asking the STT service again: %s", failure)
            await asyncio.sleep(backoff_s * random.uniform(0.5, 1.5))
            backoff_s = min(backoff_s * 2, MAX_OVERLOAD_BACKOFF_S)
