"""A turn longer than the maximum utterance is cut where Whisper says a phrase ended, and
no word is lost or said twice at a cut: the gateway and STT service on loopback, one
monologue of over a minute of real speech, streamed as it is spoken."""

import pytest

from dragoman.api.speech.v1 import speech_pb2
from dragoman.clients import conversation, conversation_bench
from dragoman.clients.conversation import Conversation
from dragoman.clients.wer import word_error_rate
from tests.conftest import DATA
from tests.streaming import audio_requests, config_request, finals, paced

MONOLOGUE_S = 60.0
PACE = 1.5
"""Times real time: a live speaker, a little faster to keep the suite short (the policy
probes for phrase ends by the clock, so the audio must not arrive all at once)."""
WER_RATIO = 1.1
"""Of offline faster-whisper's WER on the same clips, give or take one word: int8 kernels
differ between CPUs by a word either way."""


@pytest.fixture(scope="module")
def monologue() -> Conversation:
    """The longest test clips, said one after another with 0.15-0.5 s pauses."""
    clips = sorted(
        conversation.load_clips(DATA),
        key=lambda clip: clip.speech_end_s - clip.speech_start_s,
        reverse=True,
    )
    chosen, spoken_s = [], 0.0
    for clip in clips:
        if spoken_s >= MONOLOGUE_S + 2:
            break
        chosen.append(clip)
        spoken_s += clip.speech_end_s - clip.speech_start_s
    built = conversation.build(chosen, monologue_s=float("inf"))
    [turn] = built.turns
    assert turn.speech_end_s - turn.speech_start_s >= MONOLOGUE_S
    return built


@pytest.fixture(scope="module")
def offline_wer(monologue: Conversation, tmp_path_factory: pytest.TempPathFactory) -> float:
    """faster-whisper on each whole clip: what the model says without any cut."""
    return conversation_bench.offline_wer("tiny.en", tmp_path_factory.mktemp("models"), monologue)


@pytest.mark.slow
def test_a_monologue_comes_back_whole_in_pieces_cut_at_phrase_ends(
    stack, monologue, offline_wer
) -> None:
    audio = monologue.audio
    requests = [config_request(audio, interim_results=True), *audio_requests(audio, 100)]
    responses = list(stack.stub.StreamingRecognize(paced(requests, 0.1 / PACE), timeout=240))
    pieces = finals(responses)
    reasons = [piece.endpoint_reason for piece in pieces]
    assert reasons.count(speech_pb2.ENDPOINT_REASON_MAX_DURATION) >= 3, reasons

    [turn] = monologue.turns
    said = " ".join(piece.transcript for piece in pieces)
    present = conversation.sentences_present(turn, said)
    missing = [s for s, there in zip(turn.sentences, present, strict=True) if not there]
    assert not missing, f"sentences lost at the cuts: {missing}\nheard: {said}"

    streaming_wer = word_error_rate([turn.text], [said])
    one_word = 1 / len(turn.text.split())
    print(f"{len(pieces)} pieces, streaming WER {streaming_wer:.3f}, offline {offline_wer:.3f}")
    assert streaming_wer <= offline_wer * WER_RATIO + one_word, said
