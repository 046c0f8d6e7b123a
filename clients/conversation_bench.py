"""The continuous benchmark: one long conversation streamed as a user streams it, scored
against the truth of the audio.

Each of N clients streams the same conversation (`clients.conversation`) at real-time pace
in 100 ms chunks, client i starting `offset_s` after client i-1, to `dragoman serve` in its
own process. Every response is timed on arrival, and every chunk's send time is kept, so a
latency runs from the moment the client had sent the audio of a true speech boundary:

- final latency: from the true end of a turn's speech to the arrival of the last final
  result of that turn (the one that carries its last words), endpoint silence included;
- first text: from the true start of a turn's speech to the first result (interim or
  final) that shows a word of that turn's reference;
- WER of every final over the whole stream, against the offline WER of the same model on
  the same clips, each decoded whole;
- turns with no final, or whose finals miss their last words;
- the server's CPU seconds per audio second and peak RSS, and the STT seconds thrown away
  (model time spent on calls whose result nobody used), from the server's own metrics.
"""

import asyncio
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from faster_whisper import WhisperModel

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.clients.conversation import Conversation, Turn, sentences_present, turn_at
from dragoman.clients.server_process import ServerProcess
from dragoman.clients.streaming import SendLog, stream_audio, streaming_config
from dragoman.clients.wer import normalize, word_error_rate
from dragoman.stt.models import prepare

CHUNK_MS = 100
WASTE_METRICS = {
    "gateway": "dragoman_gateway_stt_discarded_seconds_total",
    "stt": "dragoman_stt_discarded_run_seconds_total",
}


@dataclass(frozen=True)
class Timed:
    """A result of the stream, with when it arrived."""

    arrived: float
    start_s: float
    end_s: float
    transcript: str
    is_final: bool


@dataclass
class ClientRun:
    """What one client sent and received."""

    log: SendLog = field(default_factory=SendLog)
    results: list[Timed] = field(default_factory=list)
    error: str = ""


@dataclass
class TurnScore:
    turn: Turn
    final_latency_s: float | None
    """None when the turn got no final."""
    first_text_s: float | None
    """None when no result showed a word of the turn."""
    sentences_present: list[bool]
    """Whether its finals say each of its sentences (`conversation.sentences_present`)."""
    hypothesis: str

    @property
    def complete(self) -> bool:
        """Its finals reach its last words: the last sentence is there."""
        return self.sentences_present[-1]


def _seconds(value) -> float:
    return value.seconds + value.nanos / 1e9


async def _speak(
    stub: speech_pb2_grpc.SpeechServiceStub,
    conversation: Conversation,
    config: speech_pb2.StreamingRecognitionConfig,
    delay_s: float,
) -> ClientRun:
    await asyncio.sleep(delay_s)
    run = ClientRun()
    try:
        async for arrived, response in stream_audio(
            stub, conversation.audio, config, chunk_ms=CHUNK_MS, log=run.log
        ):
            if response.HasField("result") and response.result.transcript:
                result = response.result
                run.results.append(
                    Timed(
                        arrived,
                        _seconds(result.start_offset),
                        _seconds(result.end_offset),
                        result.transcript,
                        result.is_final,
                    )
                )
    except grpc.aio.AioRpcError as error:
        run.error = f"{error.code().name}: {error.details()}"
    return run


def _shows_a_word_of(transcript: str, reference: list[str]) -> bool:
    words = normalize(transcript).split()
    matcher = difflib.SequenceMatcher(a=words, b=reference, autojunk=False)
    return any(block.size for block in matcher.get_matching_blocks())


def score(conversation: Conversation, run: ClientRun) -> list[TurnScore]:
    """Each turn's figures from one client's results."""
    finals: dict[int, list[Timed]] = {turn.index: [] for turn in conversation.turns}
    seen: dict[int, list[Timed]] = {turn.index: [] for turn in conversation.turns}
    for result in run.results:
        turn = turn_at(conversation.turns, result.start_s, result.end_s)
        if turn is None:
            continue
        seen[turn.index].append(result)
        if result.is_final:
            finals[turn.index].append(result)
    scores = []
    for turn in conversation.turns:
        reference = normalize(turn.text).split()
        ended = run.log.sent_time_of(turn.speech_end_s)
        started = run.log.sent_time_of(turn.speech_start_s)
        its_finals = finals[turn.index]
        hypothesis = " ".join(f.transcript for f in its_finals)
        first = next(
            (r for r in seen[turn.index] if _shows_a_word_of(r.transcript, reference)), None
        )
        scores.append(
            TurnScore(
                turn=turn,
                final_latency_s=its_finals[-1].arrived - ended if its_finals else None,
                first_text_s=first.arrived - started if first else None,
                sentences_present=sentences_present(turn, hypothesis),
                hypothesis=hypothesis,
            )
        )
    return scores


def _percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def offline_wer(model_name: str, cache_dir: Path, conversation: Conversation) -> float:
    """faster-whisper on each whole clip of the conversation, as one corpus."""
    prepared = prepare(model_name, cache_dir)
    model = WhisperModel(str(prepared.directory), device="cpu", compute_type="int8")
    references, hypotheses = [], []
    for clip in conversation.clips:
        audio = clip.samples.astype(np.float32) / 32768
        segments, _ = model.transcribe(audio, language="en", beam_size=5)
        references.append(clip.text)
        hypotheses.append(" ".join(s.text.strip() for s in segments))
    return word_error_rate(references, hypotheses)


Row = dict[str, float | int | str | list[str]]


async def run_level(
    conversation: Conversation,
    *,
    model: str,
    concurrency: int,
    offset_s: float,
    serve_args: list[str],
) -> Row:
    """One server, `concurrency` clients: the figures of every turn of every client."""
    args = ["--stt-model", model, "--max-streams", str(concurrency + 4), *serve_args]
    async with ServerProcess(args) as server:
        cpu_before = server.samples()["process_cpu_seconds_total"]
        waste_before = {s: server.samples(s).get(m, 0.0) for s, m in WASTE_METRICS.items()}
        config = streaming_config(conversation.audio, language_code="en", interim_results=True)
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = speech_pb2_grpc.SpeechServiceStub(channel)
            runs = await asyncio.gather(
                *(_speak(stub, conversation, config, i * offset_s) for i in range(concurrency))
            )
        cpu_s = server.samples()["process_cpu_seconds_total"] - cpu_before
        wasted_s = sum(
            server.samples(s).get(m, 0.0) - waste_before[s] for s, m in WASTE_METRICS.items()
        )
        peak_rss = server.peak_rss_bytes()
    scores = [turn for run in runs for turn in score(conversation, run)]
    finals_latency = [s.final_latency_s for s in scores if s.final_latency_s is not None]
    first_text = [s.first_text_s for s in scores if s.first_text_s is not None]
    final_p50, final_p95 = _percentiles(finals_latency)
    first_p50, first_p95 = _percentiles(first_text)
    audio_s = conversation.audio.duration_s * concurrency
    references = [conversation.reference] * concurrency
    hypotheses = [" ".join(r.transcript for r in run.results if r.is_final) for run in runs]
    return {
        "model": model,
        "concurrency": concurrency,
        "turns": len(scores),
        "final_latency_p50_s": final_p50,
        "final_latency_p95_s": final_p95,
        "first_text_p50_s": first_p50,
        "first_text_p95_s": first_p95,
        "wer": word_error_rate(references, hypotheses),
        "turns_without_final": sum(s.final_latency_s is None for s in scores),
        "turns_missing_last_words": sum(not s.complete for s in scores),
        "sentences_missing": sum(not p for s in scores for p in s.sentences_present),
        "cpu_s_per_audio_s": cpu_s / audio_s,
        "peak_rss_mib": peak_rss / (1 << 20),
        "stt_wasted_s": wasted_s,
        "stt_wasted_share": wasted_s / cpu_s if cpu_s else 0.0,
        "errors": "; ".join(run.error for run in runs if run.error),
        "lost": sorted(
            {
                sentence
                for s in scores
                for sentence, there in zip(s.turn.sentences, s.sentences_present, strict=True)
                if not there
            }
        ),
    }


def print_table(rows: list[Row]) -> None:
    keys = [key for key in rows[0] if key not in ("model", "errors", "lost")]
    print("| " + " | ".join(keys) + " |")
    print("| " + " | ".join("---" for _ in keys) + " |")
    for row in rows:
        cells = [f"{row[k]:.3f}" if isinstance(row[k], float) else str(row[k]) for k in keys]
        print("| " + " | ".join(cells) + " |")
    for row in rows:
        if row["errors"]:
            print(f"errors at concurrency {row['concurrency']}: {row['errors']}")
        if row["lost"]:
            print(f"sentences missing at concurrency {row['concurrency']}: {row['lost']}")


async def run(
    conversation: Conversation,
    *,
    models: list[str],
    levels: list[int],
    offset_s: float,
    serve_args: list[str],
    cache_dir: Path,
    json_path: str,
) -> int:
    turns = conversation.turns
    longest = max(t.speech_end_s - t.speech_start_s for t in turns)
    print(
        f"conversation: {conversation.audio.duration_s:.0f} s, {len(turns)} turns, "
        f"{len(conversation.clips)} clips, longest turn {longest:.0f} s; "
        f"clients {offset_s:g} s apart"
    )
    everything = []
    for model in models:
        rows = []
        for concurrency in levels:
            row = await run_level(
                conversation,
                model=model,
                concurrency=concurrency,
                offset_s=offset_s,
                serve_args=serve_args,
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
        offline = await asyncio.to_thread(offline_wer, model, cache_dir, conversation)
        for row in rows:
            row["wer_offline"] = offline
            row["wer_ratio"] = row["wer"] / offline if offline else float("nan")
        print(f"model {model}: offline faster-whisper WER on the same clips {offline:.3f}")
        print_table(rows)
        everything.extend(rows)
    if json_path:
        await asyncio.to_thread(Path(json_path).write_text, json.dumps(everything, indent=1))
    return 1 if any(row["errors"] for row in everything) else 0
