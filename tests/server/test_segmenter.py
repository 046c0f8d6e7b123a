import itertools
from pathlib import Path

import numpy as np
import pytest

from dragoman.gateway.audio import SAMPLE_RATE_HZ
from dragoman.gateway.segmenter import (
    FORCED_CUT_SLACK_S,
    EndReason,
    Event,
    Segmenter,
    SegmenterOptions,
    SpeechEnded,
    SpeechStarted,
    SpeechState,
    StreamPosition,
    UtteranceEnded,
)
from dragoman.gateway.vad import SILERO_WINDOW_SAMPLES, DualVad, SileroModel, VadOptions
from tests.streaming import read_float

SPEECH = Path(__file__).parents[1] / "data" / "speech"
CHUNK_SAMPLES = 320  # 20 ms, a typical client chunk
BOUNDARY_TOLERANCE_S = 0.3
CLIPS = ("en/librivox-0880.wav", "en/librivox-0930.wav", "en/librivox-0920.wav")


def read_wav(name: str) -> np.ndarray:
    return read_float(SPEECH / name)


def speech_span(samples: np.ndarray) -> tuple[int, int]:
    """First and one-past-last sample of 10 ms frames 15 dB above the clip's noise floor."""
    frame = SAMPLE_RATE_HZ // 100
    count = len(samples) // frame
    level_db = 10 * np.log10(np.mean(samples[: count * frame].reshape(count, -1) ** 2, 1) + 1e-10)
    loud = np.flatnonzero(level_db > np.percentile(level_db, 10) + 15)
    return int(loud[0]) * frame, (int(loud[-1]) + 1) * frame


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE_HZ), np.float32)


def make_segmenter(model: SileroModel, **options: float) -> Segmenter:
    return Segmenter(DualVad(model, VadOptions()), SegmenterOptions(**options))


def push_all(segmenter: Segmenter, samples: np.ndarray) -> list[Event]:
    events = []
    for start in range(0, len(samples), CHUNK_SAMPLES):
        events.extend(segmenter.push(samples[start : start + CHUNK_SAMPLES]))
    return events


def window_index(time_s: float) -> int:
    return round(time_s * SAMPLE_RATE_HZ) // SILERO_WINDOW_SAMPLES


def utterances(events: list[Event]) -> list[UtteranceEnded]:
    return [event for event in events if isinstance(event, UtteranceEnded)]


def assert_audio_is_from_the_stream(utterance: UtteranceEnded, stream: np.ndarray) -> None:
    start = round(utterance.audio_start_s * SAMPLE_RATE_HZ)
    np.testing.assert_array_equal(utterance.audio, stream[start : start + len(utterance.audio)])


def clips_with_gaps(gap_s: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The clips joined by gap_s of silence, and where the speech in each really is (s)."""
    parts = [silence(gap_s)]
    truth = []
    offset = len(parts[0])
    for name in CLIPS:
        clip = read_wav(name)
        first, last = speech_span(clip)
        truth.append(((offset + first) / SAMPLE_RATE_HZ, (offset + last) / SAMPLE_RATE_HZ))
        parts += [clip, silence(gap_s)]
        offset += len(clip) + len(parts[-1])
    return np.concatenate(parts), truth


def test_each_clip_becomes_one_utterance_with_accurate_boundaries(model: SileroModel) -> None:
    stream, truth = clips_with_gaps(2.0)
    segmenter = make_segmenter(model)

    events = push_all(segmenter, stream)

    found = utterances(events)
    assert [u.segment_id for u in found] == [1, 2, 3]
    assert all(u.reason is EndReason.SILENCE for u in found)
    for utterance, (speech_start_s, speech_end_s) in zip(found, truth, strict=True):
        assert utterance.speech_start_s == pytest.approx(speech_start_s, abs=BOUNDARY_TOLERANCE_S)
        assert utterance.speech_end_s == pytest.approx(speech_end_s, abs=BOUNDARY_TOLERANCE_S)
        assert_audio_is_from_the_stream(utterance, stream)
    started = [e.speech_start_s for e in events if isinstance(e, SpeechStarted)]
    assert started == [u.speech_start_s for u in found]
    assert segmenter.state is SpeechState.INACTIVE


def test_a_segmenter_started_at_an_utterance_finds_it_again(model: SileroModel) -> None:
    """A session rebuilt on another gateway starts its segmenter where the first unfinished
    utterance began, with that utterance's id: it finds the same utterances again, in
    stream time, with the same ids."""
    stream, _ = clips_with_gaps(1.5)
    whole = utterances(push_all(make_segmenter(model), stream))
    start = whole[1].start
    assert start == StreamPosition(round(whole[1].audio_start_s * SAMPLE_RATE_HZ), 2)
    rebuilt = Segmenter(
        DualVad(model, VadOptions(), origin=start.sample), SegmenterOptions(), start
    )
    again = utterances(push_all(rebuilt, stream[start.sample :]))
    assert [u.segment_id for u in again] == [u.segment_id for u in whole[1:]]
    for found, original in zip(again, whole[1:], strict=True):
        assert found.audio_start_s >= start.offset_s
        assert abs(found.speech_start_s - original.speech_start_s) < BOUNDARY_TOLERANCE_S
        assert abs(found.speech_end_s - original.speech_end_s) < BOUNDARY_TOLERANCE_S
        assert_audio_is_from_the_stream(found, stream)


def test_pre_speech_is_prepended_and_trailing_silence_trimmed(model: SileroModel) -> None:
    stream, _ = clips_with_gaps(2.0)

    found = utterances(push_all(make_segmenter(model, pre_speech_s=0.5), stream))

    for utterance in found:
        assert utterance.audio_start_s == pytest.approx(utterance.speech_start_s - 0.5)
        audio_end_s = utterance.audio_start_s + len(utterance.audio) / SAMPLE_RATE_HZ
        assert utterance.speech_end_s < audio_end_s <= utterance.speech_end_s + 0.3 + 1e-6


def test_short_pause_resumes_the_same_utterance(model: SileroModel) -> None:
    first, second = (read_wav(name) for name in CLIPS[:2])
    first = first[slice(*speech_span(first))]
    second = second[slice(*speech_span(second))]
    stream = np.concatenate([silence(1.0), first, silence(0.3), second, silence(1.0)])
    segmenter = make_segmenter(model)

    states, events = [], []
    for start in range(0, len(stream), CHUNK_SAMPLES):
        events.extend(segmenter.push(stream[start : start + CHUNK_SAMPLES]))
        states.append(segmenter.state)

    [utterance] = utterances(events)
    assert utterance.speech_start_s == pytest.approx(1.0, abs=BOUNDARY_TOLERANCE_S)
    assert utterance.speech_end_s == pytest.approx(
        len(stream) / SAMPLE_RATE_HZ - 1.0, abs=BOUNDARY_TOLERANCE_S
    )
    ended = [e.speech_end_s for e in events if isinstance(e, SpeechEnded)]
    pause_s = (SAMPLE_RATE_HZ + len(first)) / SAMPLE_RATE_HZ
    assert any(abs(end_s - pause_s) < BOUNDARY_TOLERANCE_S for end_s in ended)
    resumed = [
        i
        for i in range(1, len(states))
        if states[i - 1 : i + 1] == [SpeechState.SILENCE, SpeechState.ACTIVE]
    ]
    assert resumed


def test_long_speech_nobody_cuts_is_cut_at_its_limit_at_a_quiet_place(
    model: SileroModel,
) -> None:
    """The stream cuts long speech where a phrase ended; if it does not, the segmenter cuts
    FORCED_CUT_SLACK_S past max_utterance_s by itself, at the quietest window."""
    stream = read_wav("long/lecture-60s.wav")
    segmenter = make_segmenter(model, max_utterance_s=3.0, pre_speech_s=1.0)
    limit_s = 3.0 + FORCED_CUT_SLACK_S
    bound = round((limit_s + 1.0) * SAMPLE_RATE_HZ) + 2 * SILERO_WINDOW_SAMPLES

    events: list[Event] = []
    for start in range(0, len(stream), CHUNK_SAMPLES):
        events.extend(segmenter.push(stream[start : start + CHUNK_SAMPLES]))
        assert segmenter.buffered_samples <= bound
    events.extend(segmenter.finalize(EndReason.END_OF_STREAM))

    found = utterances(events)
    probabilities = [
        d.probability for d in DualVad(model, VadOptions()).process(stream, confirm_all=True)
    ]
    continued = 0
    for before, after in itertools.pairwise(found):
        before_end_s = before.audio_start_s + len(before.audio) / SAMPLE_RATE_HZ
        assert after.audio_start_s >= before_end_s - 1e-9
        if before.reason is EndReason.MAX_DURATION:
            assert limit_s - 2.0 <= before.speech_end_s - before.speech_start_s <= limit_s
        if after.speech_start_s == before.speech_end_s:
            # Cut mid-speech: the next utterance takes over exactly where this one stopped.
            continued += 1
            assert before.reason is EndReason.MAX_DURATION
            assert after.audio_start_s == pytest.approx(before_end_s, abs=1e-9)
            # ... and the cut is at a quiet place, not mid-word.
            cut_window = window_index(before.speech_end_s)
            limit_window = window_index(before.speech_start_s + limit_s)
            searched = probabilities[
                window_index(before.speech_start_s + limit_s - 2.0) : limit_window
            ]
            assert probabilities[cut_window] <= np.median(searched)
    assert continued >= 2
    for utterance in found:
        assert_audio_is_from_the_stream(utterance, stream)
    started = [e.segment_id for e in events if isinstance(e, SpeechStarted)]
    assert started == [u.segment_id for u in found] == list(range(1, len(found) + 1))


def test_a_cut_ends_the_utterance_there_and_the_speech_goes_on_as_the_next(
    model: SileroModel,
) -> None:
    stream = read_wav("en/librivox-0870.wav")
    segmenter = make_segmenter(model, max_utterance_s=15.0, pre_speech_s=1.0)
    events = push_all(segmenter, stream[: 6 * SAMPLE_RATE_HZ])
    [started] = [e for e in events if isinstance(e, SpeechStarted)]
    cut = round((started.speech_start_s + 3.0) * SAMPLE_RATE_HZ)
    before = segmenter.utterance_start_sample

    cut_events = segmenter.cut_at(cut)

    ended = next(e for e in cut_events if isinstance(e, UtteranceEnded))
    assert ended.reason is EndReason.MAX_DURATION
    assert ended.speech_end_s == cut / SAMPLE_RATE_HZ
    assert round(ended.audio_start_s * SAMPLE_RATE_HZ) == before
    assert round(ended.audio_start_s * SAMPLE_RATE_HZ) + len(ended.audio) == cut
    [next_started] = [e for e in cut_events if isinstance(e, SpeechStarted)]
    assert next_started.segment_id == ended.segment_id + 1
    assert next_started.speech_start_s == cut / SAMPLE_RATE_HZ
    assert segmenter.utterance_start_sample == cut, "no audio is said twice"
    assert segmenter.state is not SpeechState.INACTIVE
    rest = push_all(segmenter, stream[6 * SAMPLE_RATE_HZ :])
    rest.extend(segmenter.finalize(EndReason.END_OF_STREAM))
    [last] = utterances(rest)
    assert last.audio_start_s == cut / SAMPLE_RATE_HZ
    assert_audio_is_from_the_stream(last, stream)
    assert segmenter.cut_at(cut) == [], "nothing to cut once the utterance is over"


def test_finalize_while_active_ends_the_utterance_now(model: SileroModel) -> None:
    speech = read_wav("en/librivox-0920.wav")
    segmenter = make_segmenter(model)
    push_all(segmenter, np.concatenate([silence(0.5), speech[: 3 * SAMPLE_RATE_HZ]]))
    assert segmenter.state is SpeechState.ACTIVE

    events = segmenter.finalize(EndReason.FINALIZE)

    assert [type(e) for e in events] == [SpeechEnded, UtteranceEnded]
    [utterance] = utterances(events)
    assert utterance.reason is EndReason.FINALIZE
    assert utterance.segment_id == 1
    assert utterance.speech_end_s == segmenter.stream_time_s == 3.5
    assert utterance.audio_start_s + len(utterance.audio) / SAMPLE_RATE_HZ == pytest.approx(3.5)
    assert segmenter.state is SpeechState.INACTIVE
    assert segmenter.segment_id == 2
    assert segmenter.utterance_so_far() is None
    later = utterances(push_all(segmenter, np.concatenate([speech, silence(1.0)])))
    assert [u.segment_id for u in later] == [2]
    assert later[0].audio_start_s >= 3.5


def test_end_of_stream_keeps_the_audio_the_vad_has_not_decided_on(model: SileroModel) -> None:
    speech = read_wav("en/librivox-0880.wav")
    stream = np.concatenate([silence(0.5), speech[: 2 * SAMPLE_RATE_HZ + 100]])
    segmenter = make_segmenter(model)
    push_all(segmenter, stream)

    [utterance] = utterances(segmenter.finalize(EndReason.END_OF_STREAM))

    assert utterance.reason is EndReason.END_OF_STREAM
    assert len(stream) % SILERO_WINDOW_SAMPLES != 0
    np.testing.assert_array_equal(utterance.audio[-100:], stream[-100:])
    assert_audio_is_from_the_stream(utterance, stream)


def test_finalize_when_inactive_does_nothing(model: SileroModel) -> None:
    segmenter = make_segmenter(model)
    push_all(segmenter, silence(1.0))

    assert segmenter.finalize(EndReason.END_OF_STREAM) == []
    assert segmenter.segment_id == 1


def test_states_follow_inactive_active_silence_inactive(model: SileroModel) -> None:
    speech = read_wav("en/librivox-0930.wav")
    stream = np.concatenate([silence(1.0), speech, silence(1.5)])
    segmenter = make_segmenter(model)

    seen = [(segmenter.state, segmenter.segment_id)]
    for start in range(0, len(stream), CHUNK_SAMPLES):
        segmenter.push(stream[start : start + CHUNK_SAMPLES])
        progress = segmenter.utterance_so_far()
        assert (progress is None) == (segmenter.state is SpeechState.INACTIVE)
        if progress is not None:
            audio, audio_start_s = progress
            audio_end_s = audio_start_s + len(audio) / SAMPLE_RATE_HZ
            assert audio_end_s == pytest.approx(segmenter.stream_time_s)
        if seen[-1] != (segmenter.state, segmenter.segment_id):
            seen.append((segmenter.state, segmenter.segment_id))

    assert seen[:2] == [(SpeechState.INACTIVE, 1), (SpeechState.ACTIVE, 1)]
    assert seen[-2:] == [(SpeechState.SILENCE, 1), (SpeechState.INACTIVE, 2)]
    assert {state for state, _ in seen[1:-1]} <= {SpeechState.ACTIVE, SpeechState.SILENCE}
    assert segmenter.stream_time_s == len(stream) / SAMPLE_RATE_HZ


def test_a_burst_shorter_than_min_speech_starts_no_utterance(model: SileroModel) -> None:
    speech = read_wav("en/librivox-0920.wav")
    first, _ = speech_span(speech)
    burst = speech[first : first + round(0.3 * SAMPLE_RATE_HZ)]
    stream = np.concatenate([silence(1.0), burst, silence(1.0)])

    eager = utterances(push_all(make_segmenter(model, min_speech_s=0.0), stream))
    strict = utterances(push_all(make_segmenter(model, min_speech_s=0.5), stream))

    assert len(eager) == 1
    assert strict == []


def test_memory_stays_bounded_over_a_long_silent_stream(model: SileroModel) -> None:
    noise = np.random.default_rng(0).normal(0, 1e-4, 10 * SAMPLE_RATE_HZ).astype(np.float32)
    segmenter = make_segmenter(model, pre_speech_s=1.0)
    chunk = 1600

    for _ in range(30):
        for start in range(0, len(noise), chunk):
            assert segmenter.push(noise[start : start + chunk]) == []
            assert segmenter.buffered_samples <= SAMPLE_RATE_HZ + chunk + SILERO_WINDOW_SAMPLES

    assert segmenter.stream_time_s == 300.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"endpoint_silence_s": 0.05}, "endpoint_silence_s 0.05 is out of range: valid values"),
        ({"pre_speech_s": 2.5}, "pre_speech_s 2.5 is out of range: valid values are 0-2"),
        ({"max_utterance_s": 31.0}, "valid values are 1-30"),
        ({"min_speech_s": -0.1}, "valid values are 0-1"),
    ],
)
def test_invalid_options_are_rejected_with_valid_ranges(
    options: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SegmenterOptions(**options)
