"""Generate the `auction.v1` Python package (messages, gRPC stubs, typed stubs) from proto/.

One command, one output package (`clients/auction/v1`), committed. `--check` regenerates into a
temporary folder and fails when the committed output differs, so CI catches stale code.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from google.rpc import status_pb2
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
OUTPUT_ROOT = REPO_ROOT / "clients"
PACKAGE_DIR = Path("auction") / "v1"
INIT_TEXT = '"""Generated from proto/auction/v1 by proto/generate.py. DO NOT EDIT."""\n'


def generate(out_root: Path) -> None:
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    googleapis = str(Path(status_pb2.__file__).parents[2])  # where google/rpc/status.proto lies
    target = out_root / PACKAGE_DIR
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*_pb2*"):
        stale.unlink()
    plugin_dir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"-I{googleapis}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (target / "__init__.py").write_text(INIT_TEXT)
    (target / "py.typed").write_text("")


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / PACKAGE_DIR
        committed = OUTPUT_ROOT / PACKAGE_DIR
        names = sorted(
            {p.name for p in fresh.iterdir()} | {p.name for p in committed.glob("*") if p.is_file()}
        )
        stale = [n for n in names if n != "__pycache__" and not _same(fresh / n, committed / n)]
    if stale:
        print(f"generated code is stale: {', '.join(stale)}; run `make proto`", file=sys.stderr)
        return 1
    print("generated code is up to date")
    return 0


def _same(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when committed output is stale")
    ns = parser.parse_args()
    if ns.check:
        return check()
    target = OUTPUT_ROOT / PACKAGE_DIR
    if target.exists():
        shutil.rmtree(target / "__pycache__", ignore_errors=True)
    generate(OUTPUT_ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
