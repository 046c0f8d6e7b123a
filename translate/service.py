"""The gRPC face of the translation service: checks requests, batches them, maps errors.

Everything the servicer can refuse is refused before the request waits in the queue, so
an overloaded replica never spends queue slots on requests that would fail anyway.
"""

import logging
from collections.abc import Mapping, Sequence

import grpc
from opentelemetry import trace

from dragoman.api.translate.v1 import translate_pb2, translate_pb2_grpc
from dragoman.durations import duration
from dragoman.errors import InvalidRequestError
from dragoman.interfaces import LanguagePair
from dragoman.jobs import record_job
from dragoman.loading import LoadStates, WorkerUnavailableError
from dragoman.metrics import WorkMetrics
from dragoman.serving import ErrorCodes, answer
from dragoman.translate import languages
from dragoman.translate.backends.base import BackendError
from dragoman.translate.batcher import Batcher, QueueClosedError, QueueFullError
from dragoman.translate.languages import UnknownLanguageError

logger = logging.getLogger(__name__)

#: A backend with more pairs than this is described by its languages in error messages.
MAX_LISTED_PAIRS = 12

#: The status codes of the batcher's and the backends' errors; a StatusError names its own,
#: and anything else is a bug (UNKNOWN).
STATUS_CODES: ErrorCodes = (
    (QueueFullError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (QueueClosedError, grpc.StatusCode.UNAVAILABLE),
    (BackendError, grpc.StatusCode.INTERNAL),
)


def format_pair(pair: LanguagePair) -> str:
    return f"{pair[0]}→{pair[1]}"


def describe_pairs(pairs_by_backend: Mapping[str, Sequence[LanguagePair]]) -> str:
    """Served pairs for an error message: listed one by one where few, else by language."""
    parts: list[str] = []
    for backend, pairs in pairs_by_backend.items():
        if len(pairs) <= MAX_LISTED_PAIRS:
            parts.extend(f"{format_pair(pair)} ({backend})" for pair in pairs)
        else:
            sources = ", ".join(sorted({source for source, _ in pairs}))
            targets = ", ".join(sorted({target for _, target in pairs}))
            parts.append(f"{len(pairs)} pairs from {sources} to {targets} ({backend})")
    return ", ".join(parts) or "none yet"


class TranslateServicer(translate_pb2_grpc.TranslateServiceServicer):
    def __init__(
        self,
        batcher: Batcher,
        *,
        backends: LoadStates,
        max_texts: int,
        max_text_chars: int,
        metrics: WorkMetrics,
        tracer: trace.Tracer,
    ) -> None:
        self._batcher = batcher
        self._metrics = metrics
        self._tracer = tracer
        self._backends = backends
        self._max_texts = max_texts
        self._max_text_chars = max_text_chars
        self._pairs: dict[str, list[LanguagePair]] = {}

    async def Translate(
        self, request: translate_pb2.TranslateRequest, context: grpc.aio.ServicerContext
    ) -> translate_pb2.TranslateResponse:
        return await answer(
            context,
            self._translate(request),
            codes=STATUS_CODES,
            session_id=request.session_id,
            segment_id=request.segment_id,
        )

    async def ListLanguagePairs(
        self, request: translate_pb2.ListLanguagePairsRequest, context: grpc.aio.ServicerContext
    ) -> translate_pb2.ListLanguagePairsResponse:
        return translate_pb2.ListLanguagePairsResponse(
            pairs=[
                translate_pb2.LanguagePair(
                    source_language_code=source, target_language_code=target, backend=backend
                )
                for backend, pairs in self._served_pairs().items()
                for source, target in pairs
            ]
        )

    async def _translate(
        self, request: translate_pb2.TranslateRequest
    ) -> translate_pb2.TranslateResponse:
        texts = self._checked_texts(request.texts)
        source = _language(request.source_language_code, "source_language_code")
        target = _language(request.target_language_code, "target_language_code")
        if source == target:
            raise InvalidRequestError(
                f"source and target language are both {source!r}; nothing to translate"
            )
        backend = self._backend_for(request.backend.strip(), (source, target))
        translated = await self._batcher.submit(backend, texts, source, target)
        record_job(
            self._metrics,
            self._tracer,
            worker=backend,
            kind=format_pair((source, target)),
            queue_s=translated.queue_s,
            run_s=translated.run_s,
            batch_size=translated.batch_size,
            texts=len(texts),
            chars=sum(len(text) for text in texts),
        )
        return translate_pb2.TranslateResponse(
            translations=translated.result,
            backend=backend,
            batch_size=translated.batch_size,
            queue_duration=duration(translated.queue_s),
            inference_duration=duration(translated.run_s),
        )

    def _checked_texts(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            raise InvalidRequestError("texts is empty; send at least one text to translate")
        if len(texts) > self._max_texts:
            raise InvalidRequestError(
                f"{len(texts)} texts in one request; at most {self._max_texts}, split the batch"
            )
        for index, text in enumerate(texts):
            if not text.strip():
                raise InvalidRequestError(f"texts[{index}] is empty; send only texts with words")
            if len(text) > self._max_text_chars:
                raise InvalidRequestError(
                    f"texts[{index}] has {len(text)} characters; at most "
                    f"{self._max_text_chars}, split it into sentences"
                )
        return list(texts)

    def _backend_for(self, requested: str, pair: LanguagePair) -> str:
        """The backend to run the pair: the one requested, else the first that serves it."""
        served = self._served_pairs()
        if requested:
            self._check_loaded(requested)
            if pair not in served[requested]:
                raise InvalidRequestError(
                    f"backend {requested} does not translate {format_pair(pair)}; served "
                    f"pairs: {describe_pairs(served)}"
                )
            return requested
        for name, pairs in served.items():
            if pair in pairs:
                return name
        not_serving = self._backends.not_ready()
        if not_serving:
            raise WorkerUnavailableError(
                f"no backend serving now translates {format_pair(pair)}; not serving: "
                + ", ".join(
                    f"{name} ({'failed to load' if state == 'failed' else state})"
                    for name, state in not_serving.items()
                )
                + ("; retry shortly" if "loading" in not_serving.values() else "")
            )
        raise InvalidRequestError(
            f"no backend translates {format_pair(pair)}; served pairs: {describe_pairs(served)}"
        )

    def _check_loaded(self, name: str) -> None:
        if name not in self._backends.names:
            raise InvalidRequestError(
                f"unknown backend {name!r}; this replica serves: {', '.join(self._backends.names)}"
                ", or empty for the first that translates the pair"
            )
        self._backends.check_ready(name)

    def _served_pairs(self) -> dict[str, list[LanguagePair]]:
        """Pairs of the loaded backends, in the configured order of the backends; a backend's
        pairs are fixed once it is loaded, so they are read once."""
        loaded = self._batcher.backends
        for name in loaded.keys() - self._pairs.keys():
            self._pairs[name] = loaded[name].pairs()
        return {name: self._pairs[name] for name in self._backends.names if name in self._pairs}


def _language(code: str, field: str) -> str:
    try:
        return languages.language(code).code
    except UnknownLanguageError as error:
        raise InvalidRequestError(f"{field}: {error}") from None
