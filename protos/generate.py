"""Generates the Python protobuf and gRPC modules of `protos/` into `dragoman/api/`.

One command (`make proto`) so that generated code is never edited by hand and CI can
regenerate it and fail when it differs from what is committed.

protoc names a module after its file's path (`dragoman/stt/v1/stt.proto` becomes
`dragoman.stt.v1`), which would put the STT protos beside the STT service package. The
modules are moved under `dragoman.api` instead, and the lines that name them are rewritten:
the imports between them and the module name their message classes report. The serialized
descriptors keep the proto file and package names, so the wire and reflection do not change.

Only Dragoman's own protos are generated. `protos/google/` holds a copy of a googleapis
proto for protoc and buf to read; the generated code imports its module from the
googleapis-common-protos package, so that one `google.api` serves every package that uses it.
"""

import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUTPUT = ROOT / "dragoman" / "api"
PACKAGE = "dragoman.api"
GENERATED = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
MODULE_NAME = re.compile(r"\bdragoman\.(?=\w+\.v\d+\b)")


def _relocate(line: str) -> str:
    """The line with the generated modules' names under `dragoman.api`, if it names them."""
    if line.startswith(("from dragoman.", "import dragoman.")) or (
        "BuildTopDescriptorsAndMessages(" in line
    ):
        return MODULE_NAME.sub(f"{PACKAGE}.", line)
    return line


def main() -> int:
    sources = sorted(
        str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "dragoman").rglob("*.proto")
    )
    well_known = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as scratch:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={scratch}",
            f"--pyi_out={scratch}",
            f"--grpc_python_out={scratch}",
            *sources,
        ]
        status = protoc.main(args)
        if status != 0:
            return status
        generated = Path(scratch) / "dragoman"
        for path in sorted(generated.rglob("*")):
            if not path.name.endswith(GENERATED):
                continue
            target = OUTPUT / path.relative_to(generated)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text()
            target.write_text("".join(_relocate(line) for line in text.splitlines(True)))
            for directory in [target.parent, *target.parent.relative_to(OUTPUT).parents]:
                init = OUTPUT / directory / "__init__.py"
                if not init.exists():
                    init.touch()
    shutil.rmtree(OUTPUT / "__pycache__", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
