"""Which backend serves each translation target, and the translations of one result.

A target is served, in order of preference, by nothing at all (it is the spoken language),
by a text backend of the translation service that has the pair, or, for English, by
Whisper's own speech-to-English task on the utterance's audio when the model is
multilingual. With a configured source language an unservable target is refused when
the stream starts; with automatic detection it can only be known per utterance, so the
result carries the error for that target instead.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from dragoman.api.speech.v1 import speech_pb2
from dragoman.api.stt.v1 import stt_pb2
from dragoman.api.translate.v1 import translate_pb2
from dragoman.durations import duration
from dragoman.errors import InvalidRequestError, StatusError
from dragoman.gateway.errors import BackendUnavailableError
from dragoman.gateway.translate_client import TranslateClient
from dragoman.interfaces import LanguagePair

WHISPER = "whisper"
SAME_LANGUAGE = "none"
ENGLISH = "en"

WhisperTranslation = Callable[[], Awaitable[str]]


def _describe(pairs: dict[LanguagePair, str], whisper: bool) -> str:
    served = [f"{s}→{t} ({b})" for (s, t), b in sorted(pairs.items())]
    if whisper:
        served.append("any→en (whisper)")
    return ", ".join(served) or "none (no translation service is configured)"


@dataclass(frozen=True)
class Translator:
    """Routes and runs translations for the streams of one gateway."""

    client: TranslateClient | None

    async def pairs(self) -> dict[LanguagePair, str]:
        return await self.client.pairs() if self.client is not None else {}

    def _text_backend(self) -> TranslateClient:
        if self.client is None:
            raise BackendUnavailableError("no translation service is configured")
        return self.client

    async def route(self, source: str, target: str, *, multilingual: bool) -> str:
        """The backend for source→target; raises InvalidRequestError listing served pairs."""
        if source == target:
            return SAME_LANGUAGE
        pairs = await self.pairs()
        if (source, target) in pairs:
            return pairs[(source, target)]
        if target == ENGLISH and multilingual:
            return WHISPER
        raise InvalidRequestError(
            f"no backend translates {source or 'auto'}→{target}; served pairs: "
            f"{_describe(pairs, multilingual)}"
        )

    async def check(self, source: str, targets: Sequence[str], model: stt_pb2.ModelInfo) -> None:
        """Refuses a stream whose targets cannot be served from its configured language,
        or, with the language detected, whose targets nothing can reach: not Whisper's
        English, not a language the model recognizes (a same-language target), not the
        target of any pair the translation service serves."""
        multilingual = not model.english_only
        if source:
            for target in targets:
                await self.route(source, target, multilingual=multilingual)
            return
        if all(t == ENGLISH for t in targets):
            return
        pairs = await self.pairs()
        if not pairs:
            raise InvalidRequestError(
                f"translation to {', '.join(targets)} needs the translation service, "
                "which this gateway is not configured with"
            )
        reachable = {ENGLISH, *model.language_codes, *(target for _, target in pairs)}
        unreachable = [t for t in targets if t not in reachable]
        if unreachable:
            raise InvalidRequestError(
                f"translation_targets {', '.join(unreachable)} cannot be served: valid values "
                f"are {', '.join(sorted(reachable))}"
            )

    async def translate(
        self,
        text: str,
        source: str,
        targets: Sequence[str],
        *,
        multilingual: bool,
        whisper: WhisperTranslation,
        session_id: str,
        segment_id: int,
    ) -> list[speech_pb2.Translation]:
        """One Translation per target, in order, run concurrently."""
        return list(
            await asyncio.gather(
                *(
                    self._one(text, source, target, multilingual, whisper, session_id, segment_id)
                    for target in targets
                )
            )
        )

    async def _one(
        self,
        text: str,
        source: str,
        target: str,
        multilingual: bool,
        whisper: WhisperTranslation,
        session_id: str,
        segment_id: int,
    ) -> speech_pb2.Translation:
        started = time.monotonic()
        result = speech_pb2.Translation(language_code=target)
        try:
            backend = await self.route(source, target, multilingual=multilingual)
            if not text:
                translated = ""
            elif backend == SAME_LANGUAGE:
                translated = text
            elif backend == WHISPER:
                translated = await whisper()
            else:
                request = translate_pb2.TranslateRequest(
                    texts=[text],
                    source_language_code=source,
                    target_language_code=target,
                    backend=backend,
                    session_id=session_id,
                    segment_id=segment_id,
                )
                translated = (await self._text_backend().translate(request)).translations[0]
        except InvalidRequestError as error:
            result.error = str(error)
            return result
        except StatusError as error:
            result.error = f"translation failed: {error}"
            return result
        result.text = translated
        result.backend = backend
        result.latency.CopyFrom(duration(time.monotonic() - started))
        return result
