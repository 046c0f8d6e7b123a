"""The gateway's client of the translation service."""

import grpc

from dragoman.api.translate.v1 import translate_pb2, translate_pb2_grpc
from dragoman.gateway.channels import BackendClient
from dragoman.gateway.errors import from_backend
from dragoman.interfaces import TRANSLATE_SERVICE_NAME, LanguagePair


class TranslateClient(BackendClient):
    """Calls the translation service; remembers which pairs it serves, by which backend."""

    service_name = TRANSLATE_SERVICE_NAME
    stub_class = translate_pb2_grpc.TranslateServiceStub
    _stub: translate_pb2_grpc.TranslateServiceStub
    _pairs: dict[LanguagePair, str] | None = None

    async def pairs(self) -> dict[LanguagePair, str]:
        """(source, target) -> the first backend serving it; asked until a replica serves
        some (one still loading its backends answers none)."""
        if not self._pairs:
            try:
                response = await self._stub.ListLanguagePairs(
                    translate_pb2.ListLanguagePairsRequest(), timeout=self._timeout_s
                )
            except grpc.aio.AioRpcError as error:
                raise from_backend(error, "translation") from error
            pairs: dict[LanguagePair, str] = {}
            for pair in response.pairs:
                key = (pair.source_language_code, pair.target_language_code)
                pairs.setdefault(key, pair.backend)
            self._pairs = pairs
        return self._pairs

    async def translate(
        self, request: translate_pb2.TranslateRequest
    ) -> translate_pb2.TranslateResponse:
        try:
            return await self._stub.Translate(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_backend(error, "translation") from error
