"""The images, checked without a Docker engine.

No engine runs on these machines, so the images are never built here. Instead every
Dockerfile passes hadolint and keeps its shape (stages, a non-root user), and the one step
that matters in each build stage, deploy/docker/install.sh, runs here as the Dockerfile
runs it: same arguments and variables, on a copy of the same build context, into one
virtual environment per image. Each service is then started from its own environment on
loopback, Envoy with the configuration the edge image renders, and asked what compose's
health checks ask; a file goes through all of them.
"""

import fnmatch
import re
import shlex
import shutil
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO

import grpc
import httpx
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dragoman.api.speech.v1 import speech_pb2, speech_pb2_grpc
from tests.deploy.services import SERVICES
from tests.processes import free_port, isolated

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
INSTALL_SCRIPT = "/src/deploy/docker/install.sh"
#: Where the images put their environment, models and page; a temporary folder here.
IMAGE_PREFIX = "/opt/dragoman"
JFK = ROOT / "tests" / "data" / "speech" / "en" / "jfk.wav"
PAGE = "<!doctype html><title>the page the gateway image serves</title>\n"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(dockerfile: Path) -> list[Instruction]:
    """The instructions of `dockerfile`, continuation lines joined, comments dropped."""
    joined: list[str] = []
    current = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    assert not current, f"{dockerfile.name} ends inside a continued line"
    return [Instruction(*[*line.split(None, 1), ""][:2]) for line in joined]


def stages(dockerfile: Path) -> list[list[Instruction]]:
    """Each stage's instructions, starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions(dockerfile):
        if instruction.keyword.upper() == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_dockerfiles_pass_hadolint() -> None:
    assert {path.name for path in DOCKERFILES} >= {
        "gateway.Dockerfile",
        "stt.Dockerfile",
        "stt-cpu.Dockerfile",
        "translate.Dockerfile",
        "edge.Dockerfile",
    }
    result = subprocess.run(
        [Path(sys.executable).parent / "hadolint", "--no-color", "--failure-threshold", "style"]
        + [str(path) for path in DOCKERFILES],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.stem)
def test_dockerfile_builds_in_stages_with_the_install_script_and_runs_unprivileged(
    dockerfile: Path,
) -> None:
    built = stages(dockerfile)
    assert len(built) >= 2, "a build stage and a runtime stage"
    runs = [i.arguments for stage in built[:-1] for i in stage if i.keyword.upper() == "RUN"]
    assert any(INSTALL_SCRIPT in run for run in runs), f"no build stage runs {INSTALL_SCRIPT}"
    users = [i.arguments.split(":")[0] for i in built[-1] if i.keyword.upper() == "USER"]
    assert users, "the runtime stage sets no USER"
    assert users[-1] not in ("root", "0"), "the runtime stage runs as root"


@dataclass(frozen=True)
class InstallStep:
    """An image's call of install.sh, with the variables its build stage sets."""

    arguments: list[str]
    environment: dict[str, str]

    @property
    def key(self) -> tuple:
        return tuple(self.arguments), tuple(sorted(self.environment.items()))


def variables(instruction: Instruction) -> dict[str, str]:
    """The variables of an ENV instruction (the NAME=value form)."""
    return dict(word.partition("=")[::2] for word in shlex.split(instruction.arguments))


def runtime_environment(dockerfile: Path) -> dict[str, str]:
    """What the runtime stage's ENV sets, but PATH (the image's environment comes first)."""
    environment: dict[str, str] = {}
    for instruction in stages(dockerfile)[-1]:
        if instruction.keyword.upper() == "ENV":
            environment |= variables(instruction)
    environment.pop("PATH", None)
    return environment


def install_step(dockerfile: Path) -> InstallStep:
    """Reads the call from the Dockerfile, so the test cannot drift from the build."""
    arg_defaults: dict[str, str] = {}
    for instruction in instructions(dockerfile):
        if instruction.keyword.upper() == "FROM":
            break
        if instruction.keyword.upper() == "ARG" and "=" in instruction.arguments:
            name, _, value = instruction.arguments.partition("=")
            arg_defaults[name.strip()] = value.strip()
    for stage in stages(dockerfile):
        environment: dict[str, str] = {}
        for instruction in stage:
            keyword = instruction.keyword.upper()
            if keyword == "ENV":
                environment |= variables(instruction)
            if keyword != "RUN" or INSTALL_SCRIPT not in instruction.arguments:
                continue
            command = next(c for c in instruction.arguments.split("&&") if INSTALL_SCRIPT in c)
            words = shlex.split(command)
            arguments = words[words.index(INSTALL_SCRIPT) + 1 :]
            return InstallStep(
                [string.Template(word).substitute(arg_defaults) for word in arguments],
                environment,
            )
    raise AssertionError(f"{dockerfile.name} never runs {INSTALL_SCRIPT}")


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not [p for p in patterns if p.startswith("!")], "exceptions are not understood here"
    return patterns


def copy_build_context(destination: Path) -> None:
    """What `docker build .` sends from the repository root: the tree less .dockerignore's
    patterns (paths from the root, and `**/name` at any depth)."""
    patterns = dockerignore_patterns()

    def ignored(relative: str) -> bool:
        name = relative.rsplit("/", 1)[-1]
        return any(
            fnmatch.fnmatchcase(name, pattern[3:])
            if pattern.startswith("**/")
            else fnmatch.fnmatchcase(relative, pattern)
            for pattern in patterns
        )

    def ignore(directory: str, names: list[str]) -> set[str]:
        base = Path(directory).relative_to(ROOT)
        return {name for name in names if ignored((base / name).as_posix())}

    shutil.copytree(ROOT, destination, ignore=ignore, symlinks=True)


@dataclass(frozen=True)
class Image:
    """One image's install, made outside Docker: `root` stands for /opt/dragoman, `context`
    is the build context it was installed from, and `environment` is its runtime ENV, on
    loopback instead of every address."""

    root: Path
    context: Path
    environment: dict[str, str]

    @property
    def bin(self) -> Path:
        return self.root / "venv" / "bin"


def on_host(value: str, root: Path) -> str:
    return value.replace(IMAGE_PREFIX, str(root))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Image]:
    """Every image's install step, run concurrently, each from its own copy of the build
    context as `docker build` gives each image (pip builds in the source tree, so installs
    sharing one tree collide); images whose steps are the same (the CUDA and CPU STT images)
    share one install."""
    base = tmp_path_factory.mktemp("images")
    steps = {dockerfile.stem: install_step(dockerfile) for dockerfile in DOCKERFILES}
    first_with_step: dict[tuple, str] = {}
    for name, step in steps.items():
        first_with_step.setdefault(step.key, name)
    started: dict[str, tuple[subprocess.Popen, IO[str]]] = {}
    for name in first_with_step.values():
        step = steps[name]
        root = base / name
        root.mkdir()
        context = base / "contexts" / name
        copy_build_context(context)
        log = (root / "install.log").open("w+")
        script = context / "deploy" / "docker" / "install.sh"
        build_environment = {key: on_host(value, root) for key, value in step.environment.items()}
        started[name] = (
            subprocess.Popen(
                [str(script), *(on_host(argument, root) for argument in step.arguments)],
                env=isolated({"PYTHON": sys.executable, **build_environment}),
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
            log,
        )
    failures = []
    for name, (process, log) in started.items():
        status = process.wait(timeout=600)
        log.seek(0)
        if status != 0:
            failures.append(f"install.sh for {name} failed:\n{log.read()[-5000:]}")
        log.close()
    assert not failures, "\n".join(failures)
    built = {}
    for dockerfile in DOCKERFILES:
        name = first_with_step[steps[dockerfile.stem].key]
        root = base / name
        built[dockerfile.stem] = Image(
            root,
            base / "contexts" / name,
            {
                key: "127.0.0.1" if key.endswith("_HOST") else on_host(value, root)
                for key, value in runtime_environment(dockerfile).items()
            },
        )
    return built


@pytest.mark.parametrize("image", ["gateway", "stt-cpu", "stt"])
def test_gateway_and_stt_images_carry_no_torch(images: dict[str, Image], image: str) -> None:
    python = images[image].bin / "python"
    result = subprocess.run(
        [python, "-c", "import importlib.util; print(importlib.util.find_spec('torch'))"],
        cwd=images[image].root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "None"


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots` with its size and modification time."""
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and not path.name.endswith(".log")
    }


@dataclass
class Running:
    ports: dict[str, int]
    images: dict[str, Image]
    home: Path
    installed_files: dict[str, tuple[int, int]]
    logs: Path


class Started:
    """Processes started from the images' environments; SIGTERM stops them, as Docker does."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._processes: dict[str, tuple[subprocess.Popen, IO[str]]] = {}

    def start(self, name: str, command: list[str], environment: dict[str, str]) -> None:
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(
            command,
            env=isolated(environment),
            cwd=self.logs,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._processes[name] = (process, log)

    def wait_until(self, name: str, ready: Callable[[], bool], timeout_s: float = 120) -> None:
        """Polls `ready` while `name` runs; a process that exits (on an import its image
        lacks, say) fails at once, with its log."""
        process, _ = self._processes[name]
        deadline = time.monotonic() + timeout_s
        while not ready():
            assert process.poll() is None, f"{name} exited:\n{self.log_tail(name)}"
            assert time.monotonic() < deadline, f"{name} never ready:\n{self.log_tail(name)}"
            time.sleep(0.2)

    def log_tail(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()[-5000:]

    def stop(self) -> None:
        for process, _ in reversed(self._processes.values()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, log in self._processes.values():
            process.wait(30)
            log.close()


def render_edge_config(images: dict[str, Image], ports: dict[str, int], path: Path) -> None:
    """As the edge image's config stage does, with loopback addresses instead of names."""
    addresses = {
        "--listen": f"127.0.0.1:{ports['envoy']}",
        "--grpc": f"127.0.0.1:{ports['gateway']}",
        "--http": f"127.0.0.1:{ports['gateway_http']}",
        "--admin-port": "0",
    }
    result = subprocess.run(
        [images["edge"].bin / "dragoman", "envoy-config", *chain(*addresses.items())],
        env=isolated({}),
        cwd=path.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)


def serving(address: str) -> Callable[[], bool]:
    def ready() -> bool:
        with grpc.insecure_channel(address) as channel:
            try:
                response = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.RpcError:
                return False
        return response.status == health_pb2.HealthCheckResponse.SERVING

    return ready


def live(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    return ready


@pytest.fixture(scope="module")
def running(images: dict[str, Image], tmp_path_factory) -> Iterator[Running]:
    """The services as compose runs them, each from its own image's environment and ENV."""
    names = ("gateway", "gateway_http", "stt", "translate", "envoy")
    ports = {name: free_port() for name in names}
    logs = tmp_path_factory.mktemp("logs")
    home = tmp_path_factory.mktemp("home")
    gateway, stt, translate = (images[n] for n in ("gateway", "stt-cpu", "translate"))
    web_root = Path(gateway.environment["DRAGOMAN_GATEWAY_WEB_ROOT"])
    web_root.mkdir()
    (web_root / "index.html").write_text(PAGE)
    installed_files = snapshot(gateway.root, stt.root, translate.root)
    common = {"HOME": str(home)}
    started = Started(logs)
    try:
        started.start(
            "stt",
            [str(stt.bin / "dragoman"), "stt"],
            {
                **stt.environment,
                **common,
                "DRAGOMAN_STT_PORT": str(ports["stt"]),
                "DRAGOMAN_STT_METRICS_PORT": "0",
                "DRAGOMAN_STT_PRELOAD": "base",
            },
        )
        started.start(
            "translate",
            [str(translate.bin / "dragoman"), "translator"],
            {
                **translate.environment,
                **common,
                "DRAGOMAN_TRANSLATE_PORT": str(ports["translate"]),
                "DRAGOMAN_TRANSLATE_METRICS_PORT": "0",
            },
        )
        started.start(
            "gateway",
            [str(gateway.bin / "dragoman"), "gateway"],
            {
                **gateway.environment,
                **common,
                "DRAGOMAN_GATEWAY_PORT": str(ports["gateway"]),
                "DRAGOMAN_GATEWAY_HTTP_PORT": str(ports["gateway_http"]),
                "DRAGOMAN_GATEWAY_METRICS_PORT": "0",
                "DRAGOMAN_GATEWAY_STT_TARGET": f"dns:///127.0.0.1:{ports['stt']}",
                "DRAGOMAN_GATEWAY_TRANSLATE_TARGET": f"dns:///127.0.0.1:{ports['translate']}",
            },
        )
        for name in SERVICES:
            started.wait_until(name, serving(f"127.0.0.1:{ports[name]}"))
        # After the gateway is healthy, as compose's depends_on starts it.
        config = logs / "envoy.yaml"
        render_edge_config(images, ports, config)
        started.start(
            "envoy",
            [str(images["edge"].bin / "envoy"), "-c", str(config), "--disable-hot-restart"],
            common,
        )
        started.wait_until("envoy", live(f"http://127.0.0.1:{ports['envoy']}/healthz"), 60)
        yield Running(ports, images, home, installed_files, logs)
    finally:
        started.stop()


def compose_healthcheck(service: str) -> list[str]:
    """The health check compose runs in `service`'s container (CMD form)."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    test = compose["services"][service]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return test[1:]


@pytest.mark.parametrize(
    ("service", "image", "checked"),
    [
        ("gateway", "gateway", "gateway"),
        ("stt", "stt", "stt"),
        ("stt-cpu", "stt-cpu", "stt"),
        ("translate", "translate", "translate"),
    ],
)
def test_composes_health_check_passes_in_each_image(
    running: Running, service: str, image: str, checked: str
) -> None:
    """Run with the image's own `dragoman`, on the port the test gave the service."""
    program, *arguments = compose_healthcheck(service)
    assert program == "dragoman"
    assert SERVICES[checked].health_name in arguments
    command = [str(running.images[image].bin / program)] + [
        re.sub(r"^127\.0\.0\.1:\d+$", f"127.0.0.1:{running.ports[checked]}", argument)
        for argument in arguments
    ]
    result = subprocess.run(command, cwd=running.logs, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SERVING" in result.stdout


def test_envoys_compose_health_check_passes(running: Running) -> None:
    program, *arguments = compose_healthcheck("envoy")
    assert program == "bash"
    script = arguments[-1].replace("/127.0.0.1/8080", f"/127.0.0.1/{running.ports['envoy']}")
    result = subprocess.run([program, *arguments[:-1], script], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_file_is_recognized_and_translated_through_envoy(running: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{running.ports['envoy']}") as channel:
        response = speech_pb2_grpc.SpeechServiceStub(channel).Recognize(
            speech_pb2.RecognizeRequest(
                config=speech_pb2.RecognitionConfig(
                    encoding=speech_pb2.AUDIO_ENCODING_COMPRESSED,
                    language_code="en",
                    translation_language_codes=["pt"],
                ),
                audio_content=JFK.read_bytes(),
            ),
            timeout=120,
        )
    text = " ".join(result.transcript for result in response.results)
    assert "ask not what your country can do for you" in re.sub(r"[^a-z ]", "", text.lower())
    translations = [t for result in response.results for t in result.translations]
    assert translations
    assert all(t.language_code == "pt" and t.text and not t.error for t in translations)


def test_the_page_comes_from_the_web_root_the_image_sets(running: Running) -> None:
    response = httpx.get(f"http://127.0.0.1:{running.ports['envoy']}/", timeout=10)
    assert response.status_code == 200
    assert response.text == PAGE


def test_the_services_write_nothing_to_their_image(running: Running) -> None:
    """Containers run with a read-only root filesystem: the models were joined at build
    time and nothing is cached at start. Kept last so that it sees a recognition too."""
    after = snapshot(*(running.images[n].root for n in ("gateway", "stt-cpu", "translate")))
    assert after == running.installed_files
    assert not list(running.home.rglob("*")), "a service wrote to its home directory"
