"""`dragoman transcribe`: streams a file and shows the live transcript.

On a terminal the interim text is rewritten in place and each final result becomes a
line; piped, only final lines are printed; with `--json` every response is a JSON line.
"""

import shutil
import sys
from typing import TextIO

import grpc
from google.protobuf import json_format

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.clients.audio_file import read_pcm
from dragoman.clients.streaming import stream_audio, streaming_config

Reason = speech_pb2.SuppressionReason


def _seconds(value) -> float:
    return value.seconds + value.nanos / 1e9


def format_final(result: speech_pb2.StreamingRecognitionResult) -> str:
    span = f"[{_seconds(result.start_offset):7.2f} → {_seconds(result.end_offset):7.2f}]"
    if result.HasField("suppression"):
        reason = Reason.Name(result.suppression.reason).removeprefix("SUPPRESSION_REASON_")
        if not result.transcript:
            return f"{span} (suppressed {reason.lower()}: {result.suppression.detail})"
    return f"{span} {result.transcript}"


def format_translation(translation: speech_pb2.Translation) -> str:
    text = translation.text or f"({translation.error})"
    return f"{'':18}{translation.language_code}: {text}"


class LiveView:
    """Prints responses for a person (interims in place on a terminal) or as JSON lines."""

    def __init__(self, out: TextIO, *, json_lines: bool) -> None:
        self._out = out
        self._json = json_lines
        self._live = out.isatty() and not json_lines
        self._width = shutil.get_terminal_size().columns

    def show(self, response: speech_pb2.StreamingRecognizeResponse) -> None:
        if self._json:
            line = json_format.MessageToJson(response, indent=None)
            self._out.write(line + "\n")
        elif response.HasField("session"):
            self._out.write(f"session {response.session.session_id} ({response.session.model})\n")
        elif response.HasField("result"):
            result = response.result
            if result.is_final:
                clear = "\r\x1b[K" if self._live else ""
                self._out.write(f"{clear}{format_final(result)}\n")
                for translation in result.translations:
                    self._out.write(f"{format_translation(translation)}\n")
            elif self._live:
                text = f"… {result.transcript}"[-(self._width - 1) :]
                self._out.write(f"\r\x1b[K\x1b[2m{text}\x1b[0m")
        self._out.flush()


async def transcribe(
    target: str,
    path: str,
    *,
    realtime: bool,
    json_lines: bool,
    language_code: str = "",
    model: str = "",
    interim_results: bool = True,
    word_time_offsets: bool = False,
    translation_targets: list[str] | None = None,
    resume: bool = True,
    out: TextIO = sys.stdout,
) -> int:
    """Streams `path` to the service at `target`; returns a process exit status."""
    audio = read_pcm(path)
    config = streaming_config(
        audio,
        language_code=language_code,
        model=model,
        interim_results=interim_results,
        word_time_offsets=word_time_offsets,
        translation_targets=translation_targets,
    )
    view = LiveView(out, json_lines=json_lines)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = speech_pb2_grpc.SpeechServiceStub(channel)
        try:
            async for _, response in stream_audio(
                stub, audio, config, realtime=realtime, resume=resume
            ):
                view.show(response)
        except grpc.aio.AioRpcError as error:
            print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    return 0
