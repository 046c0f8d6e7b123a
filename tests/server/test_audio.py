import io
import threading
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from dragoman.gateway.audio import (
    SAMPLE_RATE_HZ,
    AudioFormatError,
    CompressedDecoder,
    PcmDecoder,
    make_decoder,
)

SPEECH = Path(__file__).parents[1] / "data" / "speech"


def read_wav(name: str) -> tuple[np.ndarray, int]:
    with wave.open(str(SPEECH / name)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2"), wav.getframerate()


def sine_pcm(frequency_hz: float, rate_hz: int, seconds: float, channels: int = 1) -> bytes:
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    mono = (0.5 * 32767 * np.sin(2 * np.pi * frequency_hz * t)).astype("<i2")
    return np.repeat(mono[:, np.newaxis], channels, axis=1).tobytes()


def decode_all(
    decoder: PcmDecoder | CompressedDecoder, data: bytes, chunk_bytes: int
) -> np.ndarray:
    parts = [decoder.decode(data[i : i + chunk_bytes]) for i in range(0, len(data), chunk_bytes)]
    parts.append(decoder.flush())
    decoder.close()
    return np.concatenate(parts)


def keep_decoding(decoder: CompressedDecoder, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        decoder.decode(b"")
        time.sleep(0.01)


def peak_frequency_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE_HZ)[np.argmax(spectrum)])


def encode(samples: np.ndarray, rate_hz: int, container: str, codec: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=48000 if codec == "libopus" else rate_hz)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate_hz
        resampler = av.AudioResampler(format="s16", layout="mono", rate=stream.rate)
        for resampled in resampler.resample(frame):
            output.mux(stream.encode(resampled))
        output.mux(stream.encode(None))
    return buffer.getvalue()


@pytest.mark.parametrize("rate_hz", [8000, 16000, 22050, 44100, 48000])
def test_pcm_is_resampled_to_16khz_with_exact_length_and_pitch(rate_hz: int) -> None:
    seconds = 1.3
    out = decode_all(PcmDecoder(rate_hz, 1), sine_pcm(1000.0, rate_hz, seconds), 4000)

    assert out.dtype == np.float32
    assert abs(len(out) - round(seconds * SAMPLE_RATE_HZ)) <= 2
    assert abs(peak_frequency_hz(out) - 1000.0) < 5.0
    assert 0.45 < np.max(np.abs(out)) < 0.55


def test_real_telephone_clip_keeps_its_duration() -> None:
    samples, rate_hz = read_wav("en/ivr-vm-opts.wav")
    out = decode_all(PcmDecoder(rate_hz, 1), samples.tobytes(), 3200)

    assert rate_hz == 8000
    assert len(out) == round(len(samples) * SAMPLE_RATE_HZ / rate_hz)


def test_stereo_is_downmixed_by_averaging_channels() -> None:
    left = np.full(1600, 16000, dtype="<i2")
    right = np.full(1600, -8000, dtype="<i2")
    interleaved = np.column_stack([left, right]).tobytes()

    out = decode_all(PcmDecoder(SAMPLE_RATE_HZ, 2), interleaved, 640)

    np.testing.assert_allclose(out, 4000 / 32768, rtol=1e-6)


def test_odd_sized_chunks_give_the_same_audio_as_one_chunk() -> None:
    samples, _ = read_wav("en/ivr-dir-nomore.wav")
    stereo = np.repeat(samples[:, np.newaxis], 2, axis=1).tobytes()

    whole = decode_all(PcmDecoder(8000, 2), stereo, len(stereo))
    pieces = decode_all(PcmDecoder(8000, 2), stereo, 4 * 331)

    assert len(whole) == len(pieces)
    np.testing.assert_allclose(pieces, whole, atol=1e-5)


def test_partial_frame_chunk_is_rejected_with_the_frame_size() -> None:
    decoder = PcmDecoder(16000, 2)

    with pytest.raises(AudioFormatError, match=r"6 bytes.*4 bytes"):
        decoder.decode(b"\0" * 6)


@pytest.mark.parametrize(("rate_hz", "channels"), [(7999, 1), (48001, 1), (16000, 0), (16000, 9)])
def test_out_of_range_format_is_rejected_with_valid_values(rate_hz: int, channels: int) -> None:
    with pytest.raises(AudioFormatError, match="valid values are"):
        PcmDecoder(rate_hz, channels)


def test_unknown_encoding_lists_the_valid_ones() -> None:
    with pytest.raises(AudioFormatError, match="LINEAR16, COMPRESSED"):
        make_decoder("MULAW", 8000, 1)


def test_make_decoder_picks_the_decoder_for_the_encoding() -> None:
    assert isinstance(make_decoder("LINEAR16", 8000, 1), PcmDecoder)
    compressed = make_decoder("COMPRESSED", 0, 0)
    compressed.close()
    assert isinstance(compressed, CompressedDecoder)


@pytest.mark.parametrize(("container", "codec"), [("flac", "flac"), ("ogg", "libopus")])
def test_compressed_audio_fed_in_small_chunks_decodes_to_its_duration(
    container: str, codec: str
) -> None:
    samples, rate_hz = read_wav("en/librivox-0880.wav")
    data = encode(samples, rate_hz, container, codec)

    out = decode_all(CompressedDecoder(), data, 997)

    assert abs(len(out) / SAMPLE_RATE_HZ - len(samples) / rate_hz) < 0.03
    reference = samples.astype(np.float32) / 32768
    assert abs(np.sqrt(np.mean(out**2)) - np.sqrt(np.mean(reference**2))) < 0.01


def test_compressed_audio_is_decoded_while_it_arrives() -> None:
    samples, rate_hz = read_wav("en/jfk.wav")
    data = encode(samples, rate_hz, "ogg", "libopus")
    decoder = CompressedDecoder()
    half = len(data) // 2

    decoder.decode(data[:half])
    deadline = time.monotonic() + 5
    early = np.zeros(0, dtype=np.float32)
    while not len(early) and time.monotonic() < deadline:
        time.sleep(0.01)
        early = decoder.decode(b"")
    rest = decode_all(decoder, data[half:], len(data))

    assert len(early) > 0
    assert abs((len(early) + len(rest)) / SAMPLE_RATE_HZ - len(samples) / rate_hz) < 0.03


def test_garbage_bytes_are_reported_as_undecodable() -> None:
    decoder = CompressedDecoder()
    decoder.decode(np.random.default_rng(0).bytes(20000))

    with pytest.raises(AudioFormatError, match="could not decode the audio as a compressed"):
        decoder.flush()
    decoder.close()


def test_decode_reports_undecodable_bytes_before_the_end_of_the_stream() -> None:
    decoder = CompressedDecoder()
    # More than FFmpeg's 5 MB probe size, so it gives up without waiting for the end.
    decoder.decode(np.random.default_rng(0).bytes(6_000_000))

    with pytest.raises(AudioFormatError, match="could not decode"):
        keep_decoding(decoder, seconds=10)
    decoder.close()


def test_close_mid_stream_stops_the_decoder_thread() -> None:
    samples, rate_hz = read_wav("en/jfk.wav")
    data = encode(samples, rate_hz, "flac", "flac")
    threads_before = set(threading.enumerate())
    decoder = CompressedDecoder()
    decoder.decode(data[: len(data) // 3])

    decoder.close()

    assert set(threading.enumerate()) <= threads_before
