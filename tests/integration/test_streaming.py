"""Streaming recognition through the real gateway and STT service on loopback."""

import io
from pathlib import Path

import av
import numpy as np
import pytest
import soxr
from faster_whisper import WhisperModel

from dragoman.api.speech.v1 import speech_pb2
from dragoman.clients.audio_file import PcmAudio
from dragoman.clients.wer import normalize, word_error_rate
from dragoman.stt.models import prepare
from tests.conftest import DATA
from tests.streaming import (
    audio_requests,
    config_request,
    finals,
    paced,
    read_wav,
    samples,
    seconds,
    silence,
    stream,
)

EventType = speech_pb2.SpeechEvent.SpeechEventType
WER_MARGIN = 0.015
"""About five words of the English clips."""


def english_clips(manifest: list[dict]) -> list[dict]:
    return [c for c in manifest if c["language"] == "en" and c["text"]]


def transcript(responses: list) -> str:
    return " ".join(r.transcript for r in finals(responses) if r.transcript)


@pytest.fixture(scope="module")
def offline_model(tmp_path_factory: pytest.TempPathFactory) -> WhisperModel:
    prepared = prepare("tiny.en", tmp_path_factory.mktemp("models"))
    return WhisperModel(str(prepared.directory), device="cpu", compute_type="int8")


def test_streaming_wer_is_within_offline_wer(stack, manifest, offline_model) -> None:
    """Streaming cuts speech at its own endpoints, offline Whisper sees whole clips: a few
    words of the clips' 314 may come out differently. The margin is absolute, because
    int8 kernels differ between CPUs by a word or two either way (offline 0.038 on one
    machine, 0.032 on another, with streaming at 0.042 on both)."""
    clips = english_clips(manifest)
    references = [c["text"] for c in clips]
    streamed, offline = [], []
    for clip in clips:
        audio = read_wav(DATA / clip["file"])
        streamed.append(transcript(stream(stack.stub, audio)))
        segments, _ = offline_model.transcribe(str(DATA / clip["file"]), language="en", beam_size=5)
        offline.append(" ".join(s.text.strip() for s in segments))
    streaming_wer = word_error_rate(references, streamed)
    offline_wer = word_error_rate(references, offline)
    print(f"streaming WER {streaming_wer:.3f}, offline WER {offline_wer:.3f}, {len(clips)} clips")
    assert streaming_wer <= offline_wer + WER_MARGIN


def test_telephone_clips_at_8khz_transcribe(stack, manifest) -> None:
    clips = [c for c in english_clips(manifest) if c["sample_rate"] == 8000]
    assert len(clips) >= 10
    hypotheses = [transcript(stream(stack.stub, read_wav(DATA / c["file"]))) for c in clips]
    assert all(hypotheses)
    assert word_error_rate([c["text"] for c in clips], hypotheses) < 0.3


def _speech_bounds(audio: np.ndarray, rate: int) -> tuple[float, float]:
    """Where a clip's own speech starts and ends, by frame energy (10 ms frames)."""
    frame = rate // 100
    frames = audio[: len(audio) // frame * frame].astype(np.float64).reshape(-1, frame)
    energy = np.sqrt((frames**2).mean(axis=1))
    loud = np.flatnonzero(energy > 0.05 * energy.max())
    return loud[0] / 100, (loud[-1] + 1) / 100


def test_joined_clips_come_back_as_ordered_finals_at_their_boundaries(stack) -> None:
    names = ["librivox-0880.wav", "cards-005.wav", "librivox-0930.wav", "goforward.wav"]
    gap = silence(2.0, 16000)
    pieces, bounds, position = [gap], [], len(gap) / 16000
    for name in names:
        clip = samples(read_wav(DATA / "en" / name))
        start, end = _speech_bounds(clip, 16000)
        bounds.append((position + start, position + end))
        pieces += [clip, gap]
        position += (len(clip) + len(gap)) / 16000
    joined = PcmAudio(np.concatenate(pieces).tobytes(), 16000, 1)
    results = finals(stream(stack.stub, joined))

    assert [r.segment_id for r in results] == sorted(r.segment_id for r in results)
    assert len(results) == len(names)
    for result, (start, end) in zip(results, bounds, strict=True):
        assert abs(seconds(result.start_offset) - start) <= 0.3, (result, start)
        assert abs(seconds(result.end_offset) - end) <= 0.3, (result, end)
        assert result.endpoint_reason == speech_pb2.ENDPOINT_REASON_SILENCE


def test_interim_results_grow_then_final_closes_the_segment(stack) -> None:
    audio = read_wav(DATA / "en" / "jfk.wav")
    requests = [config_request(audio, interim_results=True, enable_speech_events=True)]
    requests += list(audio_requests(audio, chunk_ms=100))
    responses = list(stack.stub.StreamingRecognize(paced(requests, 0.1), timeout=120))

    assert responses[0].HasField("session")
    assert responses[0].session.model == "tiny.en"
    results = [r.result for r in responses if r.HasField("result")]
    interims = [r for r in results if not r.is_final]
    assert interims, "interim results are expected while speech goes on"
    by_segment: dict[int, list] = {}
    for result in results:
        by_segment.setdefault(result.segment_id, []).append(result)
    for segment_results in by_segment.values():
        assert [r.revision for r in segment_results] == list(range(1, len(segment_results) + 1))
        assert segment_results[-1].is_final
        assert all(not r.is_final for r in segment_results[:-1])
    segment_ids = [r.segment_id for r in results]
    assert segment_ids == sorted(segment_ids)
    assert all(0.0 <= r.stability <= 1.0 for r in interims)
    assert all(seconds(r.processing_latency) > 0 for r in results)
    text = normalize(transcript(responses))
    assert "ask not what your country can do for you" in text


def test_speech_events_bracket_each_segment(stack) -> None:
    audio = read_wav(DATA / "en" / "librivox-0880.wav")
    padded = PcmAudio(audio.data + silence(1.5, 16000).tobytes(), 16000, 1)
    responses = stream(stack.stub, padded, enable_speech_events=True)
    kinds = [
        ("event", r.speech_event.type) if r.HasField("speech_event") else ("final", 0)
        for r in responses
        if r.HasField("speech_event") or (r.HasField("result") and r.result.is_final)
    ]
    assert kinds == [
        ("event", EventType.SPEECH_EVENT_TYPE_ACTIVITY_BEGIN),
        ("event", EventType.SPEECH_EVENT_TYPE_ACTIVITY_END),
        ("final", 0),
    ]


def test_half_close_flushes_the_last_utterance(stack) -> None:
    audio = read_wav(DATA / "en" / "goforward.wav")
    results = finals(stream(stack.stub, audio))
    assert results[-1].endpoint_reason in (
        speech_pb2.ENDPOINT_REASON_END_OF_STREAM,
        speech_pb2.ENDPOINT_REASON_SILENCE,
    )
    assert "go forward" in normalize(" ".join(r.transcript for r in results))


def test_finalize_ends_the_utterance_without_waiting_for_silence(stack) -> None:
    audio = read_wav(DATA / "en" / "librivox-0880.wav")
    requests = [
        config_request(audio),
        *audio_requests(audio),
        speech_pb2.StreamingRecognizeRequest(
            control=speech_pb2.StreamingControl(finalize=speech_pb2.StreamingControl.Finalize())
        ),
    ]
    results = finals(list(stack.stub.StreamingRecognize(iter(requests), timeout=60)))
    assert results[-1].endpoint_reason == speech_pb2.ENDPOINT_REASON_FINALIZE
    assert "young man" in normalize(results[-1].transcript)


def test_single_utterance_ends_the_stream_after_the_first_final(stack) -> None:
    first = samples(read_wav(DATA / "en" / "cards-001.wav"))
    second = samples(read_wav(DATA / "en" / "goforward.wav"))
    joined = np.concatenate([first, silence(1.5, 16000), second, silence(1.5, 16000)])
    responses = stream(stack.stub, PcmAudio(joined.tobytes(), 16000, 1), single_utterance=True)
    events = [r.speech_event.type for r in responses if r.HasField("speech_event")]
    results = finals(responses)
    assert EventType.SPEECH_EVENT_TYPE_END_OF_SINGLE_UTTERANCE in events
    assert len(results) == 1
    assert "clubs" in normalize(results[0].transcript)


def test_word_time_offsets_lie_inside_the_segment(stack) -> None:
    audio = read_wav(DATA / "en" / "librivox-0930.wav")
    request = config_request(audio)
    request.streaming_config.config.enable_word_time_offsets = True
    responses = list(
        stack.stub.StreamingRecognize(iter([request, *audio_requests(audio)]), timeout=60)
    )
    (result,) = finals(responses)
    starts = [seconds(w.start_offset) for w in result.words]
    assert [normalize(w.word) for w in result.words][:3] == ["he", "might", "even"]
    assert starts == sorted(starts)
    assert starts[0] >= seconds(result.start_offset) - 0.5
    assert seconds(result.words[-1].end_offset) <= seconds(result.end_offset) + 0.5


def test_stereo_48khz_is_downmixed_and_resampled(stack) -> None:
    mono = samples(read_wav(DATA / "en" / "librivox-0880.wav")).astype(np.float32)
    high = soxr.resample(mono, 16000, 48000)
    stereo = np.stack([high, high * 0.5], axis=1).astype(np.int16)
    audio = PcmAudio(stereo.tobytes(), 48000, 2)
    assert "he was not an" in normalize(transcript(stream(stack.stub, audio)))


def _ogg_opus(path: Path) -> bytes:
    buffer = io.BytesIO()
    with av.open(str(path)) as source, av.open(buffer, "w", format="ogg") as target:
        out = target.add_stream("libopus", rate=48000)
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in out.encode(frame):
                target.mux(packet)
        for packet in out.encode(None):
            target.mux(packet)
    return buffer.getvalue()


def test_compressed_ogg_opus_is_decoded(stack) -> None:
    data = _ogg_opus(DATA / "en" / "librivox-0930.wav")
    config = config_request()
    config.streaming_config.config.encoding = speech_pb2.AUDIO_ENCODING_COMPRESSED
    chunks = [data[i : i + 4000] for i in range(0, len(data), 4000)]
    requests = [config, *(speech_pb2.StreamingRecognizeRequest(audio_content=c) for c in chunks)]
    responses = list(stack.stub.StreamingRecognize(iter(requests), timeout=60))
    assert "he might even have been made amiable himself" in normalize(transcript(responses))


def test_recognize_returns_every_utterance_of_a_file(stack) -> None:
    audio = read_wav(DATA / "en" / "ivr-vm-opts.wav")
    response = stack.stub.Recognize(
        speech_pb2.RecognizeRequest(
            config=speech_pb2.RecognitionConfig(
                encoding=speech_pb2.AUDIO_ENCODING_LINEAR16,
                sample_rate_hertz=audio.sample_rate_hz,
                language_code="en",
            ),
            audio_content=audio.data,
        ),
        timeout=60,
    )
    assert response.session_id
    assert abs(seconds(response.total_billed_duration) - audio.duration_s) < 0.05
    assert all(r.is_final for r in response.results)
    text = normalize(" ".join(r.transcript for r in response.results))
    assert "advanced options" in text
