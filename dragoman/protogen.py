"""Generates the Python protobuf and gRPC modules from `protos/`.

One command (`make proto`) so that generated code is never edited by hand and CI can
regenerate it and fail when it differs from what is committed.
"""

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def main() -> int:
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={ROOT}",
        f"--pyi_out={ROOT}",
        f"--grpc_python_out={ROOT}",
        *sources,
    ]
    status = protoc.main(args)
    if status != 0:
        return status
    for source in sources:
        package_dir = ROOT / Path(source).parent
        for directory in [package_dir, *package_dir.relative_to(ROOT).parents]:
            init = ROOT / directory / "__init__.py"
            if directory != Path(".") and not init.exists():
                init.touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
