"""A bounded soak: many real-time streams against `dragoman serve` in its own process.

The services run apart from the load, so the memory, file descriptors and tasks reported
(from their own /metrics) are theirs alone. Every stream is a test clip sent at real-time
pace and half-closed, so each of its utterances must come back as a final result or the
stream must end with an error: both are counted, and the transcripts are scored.
"""

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc

from dragoman.api.speech.v1 import speech_pb2_grpc
from dragoman.clients.bench import Clip, load_clips
from dragoman.clients.server_process import ServerProcess
from dragoman.clients.streaming import stream_audio, streaming_config
from dragoman.clients.wer import word_error_rate

SAMPLE_EVERY_S = 10.0
SAMPLED = {
    "process_resident_memory_bytes": "RSS MiB",
    "process_open_fds": "open fds",
    "dragoman_gateway_tasks": "asyncio tasks",
    "dragoman_gateway_active_streams": "active streams",
}


@dataclass
class Tally:
    streams: int = 0
    finals: int = 0
    interims: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    references: list[str] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)


async def _speaker(stub, clips: itertools.cycle, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        clip: Clip = next(clips)
        texts = []
        try:
            async for _, response in stream_audio(
                stub, clip.audio, streaming_config(clip.audio, language_code="en"), chunk_ms=50
            ):
                if response.result.is_final:
                    tally.finals += 1
                    texts.append(response.result.transcript)
                elif response.HasField("result"):
                    tally.interims += 1
        except grpc.aio.AioRpcError as error:
            tally.errors[error.code().name] += 1
            continue
        tally.streams += 1
        tally.references.append(clip.text)
        tally.hypotheses.append(" ".join(texts))


def _row(elapsed_s: float, sample: dict[str, float]) -> str:
    values = [
        f"{sample.get(name, 0) / (1 << 20):.0f}"
        if name == "process_resident_memory_bytes"
        else f"{sample.get(name, 0):.0f}"
        for name in SAMPLED
    ]
    return f"| {elapsed_s:5.0f} s | " + " | ".join(values) + " |"


async def soak(streams: int, minutes: float, settle_s: float) -> int:
    """Runs the soak and prints its figures; returns 1 if any stream failed.

    `settle_s` after the last stream lets the work the server still had queued end (on a
    2-core machine six streams leave about 20 s of it) before the last figures."""
    async with (
        ServerProcess(["--max-streams", str(streams + 4)]) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = speech_pb2_grpc.SpeechServiceStub(channel)
        clips = itertools.cycle(load_clips(None))
        tally = Tally()
        started = time.monotonic()
        until = started + minutes * 60
        print(f"{streams} real-time streams for {minutes:g} min, tiny.en, interim results on")
        print("| elapsed | " + " | ".join(SAMPLED.values()) + " |")
        print("| --- |" + " --- |" * len(SAMPLED))
        print(_row(0, server.samples()), flush=True)
        speakers = [
            asyncio.create_task(_speaker(stub, clips, until, tally)) for _ in range(streams)
        ]
        while not all(task.done() for task in speakers):
            await asyncio.wait(speakers, timeout=SAMPLE_EVERY_S)
            print(_row(time.monotonic() - started, server.samples()), flush=True)
        await asyncio.gather(*speakers)
        await asyncio.sleep(settle_s)
        print(_row(time.monotonic() - started, server.samples()) + " (settled)")
    wer = word_error_rate(tally.references, tally.hypotheses) if tally.references else 0.0
    print(
        f"streams completed {tally.streams}, failed {sum(tally.errors.values())} "
        f"{dict(tally.errors) or ''}; finals {tally.finals}, interims {tally.interims}; "
        f"WER {wer:.3f}"
    )
    return 1 if tally.errors else 0
