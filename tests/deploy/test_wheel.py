"""The distribution's wheel, installed where the checkout cannot be seen.

The editable install of the checkout hides every file the wheel forgets, because the
source tree is there to read it from. Here the wheel is built from a copy of the checkout,
installed into a virtual environment of its own outside it and run from a folder outside
it, with nothing in its environment pointing back; `dragoman serve` from that install must
serve the page it carries, through Envoy with the configuration it carries, and recognize
speech.

The install takes its third-party packages from the checkout's virtual environment, whose
site-packages a .pth file appends to the new one's path, so that no dependency has to be
downloaded. Python processes the .pth files of site directories only, not of the folders
those name, so the checkout's editable finder stays inactive in the new environment.
"""

import json
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from dragoman.clients.wer import normalize
from tests.processes import Launcher, free_port, isolated

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "clients" / "web" / "dist"
JFK = ROOT / "tests" / "data" / "speech" / "en" / "jfk.wav"
SPOKEN = "ask not what your country can do for you"
LEFT_OUT = (".*", "build", "*.egg-info", "__pycache__", "test-artifacts", "tests", "node_modules")
"""Not copied: dot folders (Git, environments, caches), build outputs, the tests, and the
page's node_modules (large: it is linked instead)."""


def _page_files() -> list[str]:
    built = sorted(path.name for path in PAGE.glob("*") if not path.name.startswith("."))
    assert "index.html" in built, "the page is not built: run `make web` (a part of `make test`)"
    return built


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy, because pip builds in the source tree (build/, *.egg-info) and the
    checkout is not this test's to write. The page's node_modules is linked into the copy,
    so that a packaging rule that would pick it up does so here too."""
    _page_files()
    source = tmp_path_factory.mktemp("source") / "dragoman"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*LEFT_OUT))
    node_modules = ROOT / "clients" / "web" / "node_modules"
    if node_modules.exists():
        (source / "clients" / "web" / "node_modules").symlink_to(node_modules)
    wheels = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--quiet", "--wheel-dir", str(wheels), str(source)),
        ],
        env=isolated({}),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = wheels.glob("dragoman-*.whl")
    return built


@dataclass(frozen=True)
class Install:
    """A virtual environment with the wheel installed, and a folder outside the checkout to
    run it from."""

    venv: Path
    site_packages: Path
    workdir: Path

    def python(self, code: str) -> str:
        result = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", code],
            env=isolated({}),
            cwd=self.workdir,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def install(wheel: Path, tmp_path_factory) -> Install:
    venv = tmp_path_factory.mktemp("venv")
    workdir = tmp_path_factory.mktemp("workdir")
    subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(venv)], env=isolated({}), check=True
    )
    python = str(venv / "bin" / "python")
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(
        subprocess.run(
            [python, "-c", purelib], cwd=workdir, capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    (site_packages / "checkout-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    result = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
        env=isolated({}),
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Install(venv, site_packages, workdir)


def test_the_wheel_carries_the_page_the_sample_and_envoys_config_and_nothing_local(
    wheel: Path,
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {name.split("/", 1)[0] for name in names} == {"dragoman", "dragoman-0.1.0.dist-info"}
    data = {
        name
        for name in names
        if name.startswith("dragoman/") and not name.endswith((".py", ".pyi"))
    }
    assert data == {
        "dragoman/launch/envoy.yaml",
        "dragoman/clients/samples/jfk.wav",
        *(f"dragoman/clients/web/dist/{name}" for name in _page_files()),
    }


def test_the_installed_distribution_reads_nothing_from_the_checkout(install: Install) -> None:
    found = json.loads(
        install.python(
            "import json, dragoman\n"
            "from dragoman.launch import cli, envoy_config\n"
            "print(json.dumps({'package': dragoman.__file__, 'page': str(cli.PAGE), "
            "'sample': str(cli.SAMPLE), 'envoy': str(envoy_config.CONFIG)}))"
        )
    )
    for what, path in found.items():
        assert Path(path).is_relative_to(install.site_packages), f"{what} is {path}"
        assert Path(path).exists(), f"{what}: {path} is missing"
    envoy = Path(found["envoy"])
    assert not envoy.is_symlink()
    assert envoy.read_text() == (ROOT / "deploy" / "envoy.yaml").read_text()


@dataclass(frozen=True)
class Served:
    page: Path
    envoy: str
    gateway: str
    gateway_http: str


@pytest.fixture(scope="module")
def served(install: Install) -> Iterator[Served]:
    """`dragoman serve` of the install, every port free."""
    http_port = free_port()
    launcher = Launcher(
        "serve",
        *("--port", "0", "--http-port", str(http_port), "--metrics-port", "0"),
        *("--edge-port", "0", "--edge-admin-port", "0"),
        program=install.venv / "bin" / "dragoman",
        environment=isolated({}),
        cwd=install.workdir,
    )
    try:
        yield Served(
            install.site_packages / "dragoman" / "clients" / "web" / "dist",
            launcher.endpoint("gRPC through Envoy"),
            launcher.endpoint("gRPC, gateway direct"),
            f"127.0.0.1:{http_port}",
        )
    finally:
        launcher.process.send_signal(signal.SIGINT)
        assert launcher.wait() == 0, "".join(launcher.output)[-3000:]


@pytest.mark.parametrize("way", ["envoy", "gateway_http"])
def test_serve_from_the_wheel_serves_its_page(served: Served, way: str) -> None:
    base = f"http://{getattr(served, way)}/"
    for path, file in (("", "index.html"), ("app.js", "app.js")):
        response = httpx.get(base + path, timeout=10)
        assert response.status_code == 200, f"{base}{path}"
        assert response.content == (served.page / file).read_bytes(), f"{base}{path}"


@pytest.mark.parametrize("way", ["envoy", "gateway"])
def test_serve_from_the_wheel_recognizes_speech(served: Served, way: str) -> None:
    request = speech_pb2.RecognizeRequest(
        config=speech_pb2.RecognitionConfig(
            encoding=speech_pb2.AUDIO_ENCODING_COMPRESSED, language_code="en"
        ),
        audio_content=JFK.read_bytes(),
    )
    with grpc.insecure_channel(getattr(served, way)) as channel:
        response = speech_pb2_grpc.SpeechServiceStub(channel).Recognize(request, timeout=120)
    assert SPOKEN in normalize(" ".join(result.transcript for result in response.results))
