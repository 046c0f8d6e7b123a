from pathlib import Path

import numpy as np
import pytest

from dragoman.gateway.audio import SAMPLE_RATE_HZ
from dragoman.gateway.vad import (
    SILERO_WINDOW_SAMPLES,
    DualVad,
    SileroModel,
    VadDecision,
    VadOptions,
)
from tests.streaming import read_float

SPEECH = Path(__file__).parents[1] / "data" / "speech"
CHUNK_SAMPLES = 320  # 20 ms, a typical client chunk


def read_wav(name: str) -> np.ndarray:
    return read_float(SPEECH / name)


def run_vad(
    vad: DualVad, samples: np.ndarray, chunk_samples: int = CHUNK_SAMPLES, confirm_all: bool = False
) -> list[VadDecision]:
    decisions = []
    for start in range(0, len(samples), chunk_samples):
        chunk = samples[start : start + chunk_samples]
        decisions.extend(vad.process(chunk, confirm_all=confirm_all))
    return decisions


def decidable_windows(sample_count: int, frame_ms: int = 30) -> int:
    """Windows that end within the webrtcvad frames heard so far; the rest await more audio."""
    frame_samples = SAMPLE_RATE_HZ * frame_ms // 1000
    return sample_count // frame_samples * frame_samples // SILERO_WINDOW_SAMPLES


def loud_windows(samples: np.ndarray) -> np.ndarray:
    """Windows more than 15 dB above the clip's noise floor: where the speech is."""
    count = len(samples) // SILERO_WINDOW_SAMPLES
    windows = samples[: count * SILERO_WINDOW_SAMPLES].reshape(count, -1)
    level_db = 10 * np.log10(np.mean(windows**2, axis=1) + 1e-10)
    return level_db > np.percentile(level_db, 10) + 15


def test_digital_silence_keeps_the_gate_closed_and_silero_idle(model: SileroModel) -> None:
    decisions = run_vad(DualVad(model, VadOptions()), np.zeros(5 * SAMPLE_RATE_HZ, np.float32))

    assert len(decisions) == decidable_windows(5 * SAMPLE_RATE_HZ)
    assert not any(d.gate_open or d.is_speech for d in decisions)
    assert all(d.probability is None for d in decisions)


def test_white_noise_is_not_speech(model: SileroModel) -> None:
    noise = np.random.default_rng(0).normal(0, 0.05, 5 * SAMPLE_RATE_HZ).astype(np.float32)

    decisions = run_vad(DualVad(model, VadOptions()), noise, confirm_all=True)

    assert not any(d.is_speech for d in decisions)
    assert max(d.probability or 0.0 for d in decisions) < 0.5


def test_speech_windows_cover_the_speech_in_a_real_clip(model: SileroModel) -> None:
    samples = read_wav("en/librivox-0920.wav")
    loud = loud_windows(samples)

    decisions = run_vad(DualVad(model, VadOptions()), samples)
    speech = np.array([d.is_speech for d in decisions])
    loud = loud[: len(speech)]

    assert speech[loud].mean() > 0.85
    first, last = np.flatnonzero(speech)[[0, -1]]
    loud_first, loud_last = np.flatnonzero(loud)[[0, -1]]
    assert abs(first - loud_first) * SILERO_WINDOW_SAMPLES / SAMPLE_RATE_HZ < 0.3
    assert abs(last - loud_last) * SILERO_WINDOW_SAMPLES / SAMPLE_RATE_HZ < 0.3


def test_decisions_tile_the_stream_whatever_the_chunking(model: SileroModel) -> None:
    samples = read_wav("en/librivox-0880.wav")

    small = run_vad(DualVad(model, VadOptions()), samples, chunk_samples=77)
    large = run_vad(DualVad(model, VadOptions()), samples, chunk_samples=len(samples))

    assert small == large
    assert [d.start_sample for d in small] == [
        i * SILERO_WINDOW_SAMPLES for i in range(decidable_windows(len(samples)))
    ]
    assert all(d.end_sample - d.start_sample == SILERO_WINDOW_SAMPLES for d in small)


def test_gated_silero_agrees_with_silero_on_every_window(model: SileroModel) -> None:
    # Two clips with silence in between: Silero skips the silence and must pick up again.
    silence = np.zeros(2 * SAMPLE_RATE_HZ, np.float32)
    samples = np.concatenate(
        [silence, read_wav("en/librivox-0880.wav"), silence, read_wav("en/librivox-0930.wav")]
    )

    gated = run_vad(DualVad(model, VadOptions()), samples)
    every = run_vad(DualVad(model, VadOptions()), samples, confirm_all=True)

    assert all(d.probability is not None for d in every)
    gated_speech = np.array([d.is_speech for d in gated])
    every_speech = np.array([d.probability >= 0.5 for d in every])
    assert every_speech.sum() > 100
    assert np.mean(gated_speech == every_speech) > 0.95


def test_silero_stream_reset_forgets_the_audio_heard(model: SileroModel) -> None:
    windows = read_wav("en/librivox-0880.wav")[: 40 * SILERO_WINDOW_SAMPLES].reshape(40, -1)
    stream = model.new_stream()
    fresh = [stream.probability(window) for window in windows[:5]]
    for window in windows[5:]:
        stream.probability(window)

    stream.reset()

    assert [stream.probability(window) for window in windows[:5]] == pytest.approx(fresh)


def test_silero_rejects_windows_of_the_wrong_size(model: SileroModel) -> None:
    with pytest.raises(ValueError, match="exactly 512 samples"):
        model.new_stream().probability(np.zeros(480, np.float32))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"aggressiveness": 4}, "vad_aggressiveness 4 is out of range: valid values are 0-3"),
        ({"webrtc_frame_ms": 25}, "valid values are 10, 20, 30"),
        ({"speech_threshold": 1.0}, r"between 0 and 1 \(exclusive\)"),
        ({"speech_threshold": 0.0}, r"between 0 and 1 \(exclusive\)"),
    ],
)
def test_invalid_options_are_rejected_with_valid_values(
    options: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        VadOptions(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_every_webrtc_frame_length_gates_speech(model: SileroModel, frame_ms: int) -> None:
    samples = read_wav("en/librivox-0930.wav")

    decisions = run_vad(DualVad(model, VadOptions(webrtc_frame_ms=frame_ms)), samples)

    assert len(decisions) == decidable_windows(len(samples), frame_ms)
    assert sum(d.is_speech for d in decisions) > len(decisions) / 2
