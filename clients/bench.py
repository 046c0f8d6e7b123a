"""`dragoman bench`: the figures that matter, measured on real speech.

For each model it starts the embedded stack and streams every clip that has a reference
transcript, followed by two seconds of silence as a live microphone would send, at
real-time pace. It prints time to the first interim result after speech starts, final
latency after the end of speech (the configured endpoint silence excluded), CPU seconds
per audio second, the real-time factor of a run at full speed, the streaming WER, and the
WER of offline faster-whisper with the same model on the same clips. With `--translate`,
finals carry translations, so the final latency runs to the translated final, and the
translation latency of each backend is printed too.
"""

import asyncio
import json
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from faster_whisper import WhisperModel

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.clients.audio_file import PcmAudio, read_pcm
from dragoman.clients.streaming import SendLog, stream_audio, streaming_config
from dragoman.clients.wer import word_error_rate
from dragoman.launch.embedded import EmbeddedStack
from dragoman.stt.models import prepare
from dragoman.stt.settings import SttSettings

DEFAULT_MANIFEST = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"
TRAILING_SILENCE_S = 2.0


@dataclass(frozen=True)
class Clip:
    path: Path
    text: str
    audio: PcmAudio


@dataclass
class Figures:
    first_interim_s: list[float] = field(default_factory=list)
    final_latency_s: list[float] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)
    translation_s: dict[str, list[float]] = field(default_factory=dict)
    """Translation latency of each final, by backend."""


def load_clips(manifest: str | None, language: str = "en") -> list[Clip]:
    folder = Path(manifest).parent if manifest else DEFAULT_MANIFEST
    entries = json.loads((Path(manifest) if manifest else folder / "manifest.json").read_text())
    clips = []
    for entry in entries:
        if entry["language"] == language and entry["text"]:
            path = folder / entry["file"]
            clips.append(Clip(path, entry["text"], with_silence(read_pcm(path))))
    return clips


def with_silence(audio: PcmAudio, seconds: float = TRAILING_SILENCE_S) -> PcmAudio:
    pad = bytes(2 * audio.channels * int(audio.sample_rate_hz * seconds))
    return PcmAudio(audio.data + pad, audio.sample_rate_hz, audio.channels)


def _seconds(value) -> float:
    return value.seconds + value.nanos / 1e9


@dataclass(frozen=True)
class Languages:
    spoken: str
    targets: list[str]


async def _stream_clip(
    stub: speech_pb2_grpc.SpeechServiceStub,
    clip: Clip,
    model: str,
    endpoint_silence_s: float,
    languages: Languages,
    *,
    realtime: bool,
    figures: Figures,
) -> None:
    log = SendLog()
    config = streaming_config(
        clip.audio,
        language_code=languages.spoken,
        model=model,
        interim_results=realtime,
        translation_targets=languages.targets,
    )
    speech_start_s: float | None = None
    first_interim_seen = False
    finals: list[str] = []
    async for arrived, response in stream_audio(
        stub, clip.audio, config, realtime=realtime, chunk_ms=50, log=log
    ):
        if response.HasField("speech_event"):
            event = response.speech_event
            if event.type == speech_pb2.SpeechEvent.SPEECH_EVENT_TYPE_ACTIVITY_BEGIN:
                speech_start_s = speech_start_s or _seconds(event.offset)
        elif response.HasField("result"):
            result = response.result
            if result.is_final:
                finals.append(result.transcript)
                if result.endpoint_reason == speech_pb2.ENDPOINT_REASON_SILENCE:
                    spoken = log.sent_time_of(_seconds(result.end_offset))
                    figures.final_latency_s.append(arrived - spoken - endpoint_silence_s)
                for translation in result.translations:
                    figures.translation_s.setdefault(translation.backend, []).append(
                        _seconds(translation.latency)
                    )
            elif result.transcript and not first_interim_seen and speech_start_s is not None:
                first_interim_seen = True
                figures.first_interim_s.append(arrived - log.sent_time_of(speech_start_s))
    figures.hypotheses.append(" ".join(t for t in finals if t))


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def offline_wer(model_name: str, settings: SttSettings, clips: list[Clip], language: str) -> float:
    """WER of faster-whisper on each whole clip: the reference the stream is judged by."""
    prepared = prepare(model_name, Path(settings.model_cache_dir))
    model = WhisperModel(str(prepared.directory), device="cpu", compute_type="int8")
    hypotheses = []
    for clip in clips:
        segments, _ = model.transcribe(str(clip.path), language=language, beam_size=5)
        hypotheses.append(" ".join(s.text.strip() for s in segments))
    return word_error_rate([c.text for c in clips], hypotheses)


async def bench_model(
    model: str, stack: EmbeddedStack, clips: list[Clip], streams: int, languages: Languages
) -> dict[str, float]:
    gateway = stack.gateway_settings
    address = await stack.start()
    audio_s = sum(c.audio.duration_s for c in clips)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            live = Figures()
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            semaphore = asyncio.Semaphore(streams)

            async def one(clip: Clip, figures: Figures, realtime: bool) -> None:
                async with semaphore:
                    await _stream_clip(
                        stub,
                        clip,
                        model,
                        gateway.vad.endpoint_silence_s,
                        languages,
                        realtime=realtime,
                        figures=figures,
                    )

            await asyncio.gather(*(one(clip, live, True) for clip in clips))
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            fast = Figures()
            started = time.monotonic()
            await asyncio.gather(*(one(clip, fast, False) for clip in clips))
            fast_wall_s = time.monotonic() - started
    finally:
        await stack.stop()
    cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    references = [c.text for c in clips]
    streaming = word_error_rate(references, live.hypotheses)
    offline = offline_wer(model, stack.stt_settings, clips, languages.spoken)
    return {
        "clips": len(clips),
        "audio_s": audio_s,
        "streams": streams,
        "first_interim_p50_s": _percentile(live.first_interim_s, 50),
        "first_interim_p95_s": _percentile(live.first_interim_s, 95),
        "final_latency_p50_s": _percentile(live.final_latency_s, 50),
        "final_latency_p95_s": _percentile(live.final_latency_s, 95),
        "finals_timed": len(live.final_latency_s),
        "cpu_s_per_audio_s": cpu_s / audio_s,
        "rtf_full_speed": fast_wall_s / audio_s,
        "wer_streaming": streaming,
        "wer_streaming_full_speed": word_error_rate(references, fast.hypotheses),
        "wer_offline": offline,
        "wer_ratio": streaming / offline if offline else float("nan"),
    } | {
        f"translation_{backend}_{name}_s": _percentile(values, q)
        for backend, values in sorted(live.translation_s.items())
        for name, q in (("p50", 50), ("p95", 95))
    }


async def run_benchmark(
    stack: EmbeddedStack,
    *,
    models: list[str],
    manifest: str | None,
    streams: int,
    languages: Languages,
) -> int:
    clips = load_clips(manifest, languages.spoken)
    for model in models:
        figures = await bench_model(model, stack.with_stt_model(model), clips, streams, languages)
        silence_s = stack.gateway_settings.vad.endpoint_silence_s
        print(f"model {model} (endpoint silence {silence_s} s excluded)")
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            print(f"  {key:<{width}}  {shown}")
        print(json.dumps({"model": model, **figures}), flush=True)
    return 0
