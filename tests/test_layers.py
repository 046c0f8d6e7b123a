"""The import graph points one way: generated API, foundation, services, then launchers and
clients on top.

A service that imported another service, or a foundation module that imported a service,
would tie their releases and images together again; this reads every import statement of
the distribution (those inside functions too) and names each one that crosses a layer the
wrong way.
"""

import ast
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
SERVICES = ("dragoman.gateway", "dragoman.stt", "dragoman.translate")
TOP = ("dragoman.launch", "dragoman.clients")
API = "dragoman.api"
THIRD_PARTY_KEPT_OUT = {
    "dragoman.gateway": ("torch", "ctranslate2", "faster_whisper.tokenizer", "transformers"),
    "dragoman.stt": ("torch", "transformers"),
}
"""Runtimes a service's image must not need (the gateway only takes Silero's ONNX file from
faster-whisper's assets)."""


def _folder(package: str) -> Path:
    mapped = PROJECT["package-dir"]
    for prefix in sorted(mapped, key=len, reverse=True):
        if package == prefix or package.startswith(prefix + "."):
            rest = package[len(prefix) :].lstrip(".").split(".") if package != prefix else []
            return ROOT / mapped[prefix] / Path(*rest)
    return ROOT / Path(*package.split("."))


def _modules() -> Iterator[tuple[str, Path]]:
    for package in PROJECT["packages"]:
        for path in sorted(_folder(package).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            yield name, path


def _imports(name: str, path: Path) -> Iterator[tuple[int, str]]:
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer(module: str) -> str:
    """The layer of one of the distribution's modules."""
    if _within(module, API):
        return "api"
    for package in TOP:
        if _within(module, package):
            return "top"
    for package in SERVICES:
        if _within(module, package):
            return package
    return "foundation"


def _allowed(source: str, target: str) -> bool:
    importer, imported = layer(source), layer(target)
    if importer == "top" or importer == imported:
        return True
    if importer == "api":
        return False
    if importer == "foundation":
        return imported == "api"
    return imported in ("foundation", "api")


MODULES = dict(_modules())


def test_every_package_of_the_distribution_is_listed() -> None:
    """A folder with an `__init__.py` missing from pyproject's list would be left out of
    the wheel while the checkout still imports it."""
    listed = {_folder(package) for package in PROJECT["packages"]}
    folders = {ROOT / "dragoman"} | {ROOT / folder for folder in PROJECT["package-dir"].values()}
    found = {
        init.parent
        for folder in folders
        for init in folder.rglob("__init__.py")
        if "node_modules" not in init.parts
    }
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down_the_layers(name: str) -> None:
    wrong = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target} "
        f"({layer(name)} must not depend on {layer(target)})"
        for line, target in _imports(name, MODULES[name])
        if _within(target, "dragoman") and not _allowed(name, target)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("service", sorted(THIRD_PARTY_KEPT_OUT))
def test_services_keep_other_runtimes_out(service: str) -> None:
    kept_out = THIRD_PARTY_KEPT_OUT[service]
    wrong = [
        f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        for name in MODULES
        if _within(name, service)
        for line, target in _imports(name, MODULES[name])
        if any(_within(target, runtime) for runtime in kept_out)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_gateway_loads_no_whisper_runtime() -> None:
    """Importing a package runs its `__init__`, which a static read cannot see: the gateway
    is imported in a fresh interpreter, and the modules it loaded are checked."""
    runtimes = ("torch", "ctranslate2", "faster_whisper", "transformers")
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dragoman.gateway.app; print(' '.join(sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    wrong = sorted({name for name in loaded for runtime in runtimes if _within(name, runtime)})
    assert not wrong, f"importing the gateway loads {wrong}"


def test_a_wrong_import_is_named() -> None:
    """The check itself: a service importing another is found, and the foundation may not
    reach up."""
    assert not _allowed("dragoman.gateway.stt_client", "dragoman.stt.models")
    assert not _allowed("dragoman.serving", "dragoman.gateway.app")
    assert not _allowed("dragoman.stt.service", "dragoman.launch.cli")
    assert _allowed("dragoman.gateway.app", "dragoman.serving")
    assert _allowed("dragoman.launch.cli", "dragoman.gateway.settings")
