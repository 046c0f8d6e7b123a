"""`dragoman bench --windows`: what fitting Whisper's window to the audio costs in accuracy
and saves in time, per window policy, on the reference clips.

Each clip is one request, as the gateway sends an utterance: decoded as a final (beam 5,
segment timestamps) and as an interim (greedy) by the STT engine itself, in this process,
one request at a time. For every policy it prints the WER, the mean and p95 wall time of
a call, and how many fitted decodes were distrusted and decoded again in 30 s.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dragoman.clients.conversation import Clip
from dragoman.clients.wer import word_error_rate
from dragoman.stt import models
from dragoman.stt.engine import TranscribeOptions, WhisperEngine
from dragoman.stt.windows import WindowPolicy

FINAL = TranscribeOptions(beam_size=5)
INTERIM = TranscribeOptions(
    beam_size=1, temperatures=(0.0,), retry_full_window=False, timestamps=False
)
POLICIES = {
    "full 30 s": WindowPolicy(mode="full"),
    **{
        f"fitted, min {min_s:g} s, +1 s": WindowPolicy(min_s=min_s, margin_s=1.0, margin_share=0)
        for min_s in (5.0, 8.0, 10.0, 15.0)
    },
    "fitted, min 10 s, +1 s or +50 % (default)": WindowPolicy(),
}


@dataclass(frozen=True)
class PolicyFigures:
    wer: float
    mean_ms: float
    p95_ms: float
    retried: int


def _measure(engine: WhisperEngine, clips: list[Clip], options: TranscribeOptions) -> PolicyFigures:
    hypotheses, times, retried = [], [], 0
    for clip in clips:
        audio = clip.samples.astype(np.float32) / 32768
        started = time.perf_counter()
        result = engine.transcribe(audio, options)
        times.append(time.perf_counter() - started)
        retried += bool(result.full_window_reason)
        hypotheses.append(result.text)
    return PolicyFigures(
        wer=word_error_rate([clip.text for clip in clips], hypotheses),
        mean_ms=1000 * float(np.mean(times)),
        p95_ms=1000 * float(np.percentile(times, 95)),
        retried=retried,
    )


def run(models_named: list[str], clips: list[Clip], cache_dir: Path) -> int:
    audio_s = sum(len(clip.samples) for clip in clips) / 16000
    print(f"{len(clips)} clips, {audio_s:.0f} s, one request per clip, CPU int8")
    print(
        "| model | window policy | final WER | final ms mean / p95 | retried in 30 s "
        "| interim WER | interim ms mean / p95 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in models_named:
        engine = WhisperEngine(models.prepare(name, cache_dir), device="cpu")
        engine.transcribe(clips[0].samples.astype(np.float32) / 32768, INTERIM)
        for label, policy in POLICIES.items():
            engine.windows = policy
            final = _measure(engine, clips, FINAL)
            interim = _measure(engine, clips, INTERIM)
            print(
                f"| {name} | {label} | {final.wer:.3f} | {final.mean_ms:.0f} / "
                f"{final.p95_ms:.0f} | {final.retried} | {interim.wer:.3f} | "
                f"{interim.mean_ms:.0f} / {interim.p95_ms:.0f} |",
                flush=True,
            )
    return 0
