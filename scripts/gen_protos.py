"""Generate Tandem's protobuf and gRPC Python code (with .pyi stubs) from proto/.

Usage: python scripts/gen_protos.py [--out DIR]

Writes tandem/v1/*_pb2.py, *_pb2.pyi and *_pb2_grpc.py under DIR (default: the repository root).
The output is checked in; tests/test_protocol.py regenerates into a temporary folder and fails
when the checked-in files differ. Needs grpcio-tools (the `test` extra pins the version used).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = "tandem/v1"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Run protoc into `out`; returns the generated files. Raises RuntimeError on a protoc error."""
    from grpc_tools import protoc
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    (out / PACKAGE).mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    return sorted(p for p in (out / PACKAGE).iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT)
    args = ap.parse_args(argv)
    for path in generate(args.out):
        print(path.relative_to(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
