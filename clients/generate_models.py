"""Generate the SDK's REST models from the edge's OpenAPI document.

The edge's FastAPI app is the source of truth for the REST contract. This writes its OpenAPI document
to `clients/openapi.json` and generates pydantic models from it into `clients/auction/models.py`
(datamodel-code-generator). Both are committed; `--check` regenerates into a temporary folder and fails
when either differs, so CI catches a REST change the SDK has not picked up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CLIENTS = Path(__file__).resolve().parent
OPENAPI = CLIENTS / "openapi.json"
MODELS = CLIENTS / "auction" / "models.py"
HEADER = "# Generated from clients/openapi.json by clients/generate_models.py. DO NOT EDIT."


def openapi_document() -> str:
    # The app refuses to build without a secret; the document does not depend on it.
    os.environ.setdefault("AUCTION_JWT_SECRET", "openapi-dump-only-" + "x" * 32)
    from edge_gateway.app import create_app
    from edge_gateway.settings import EdgeSettings

    document = create_app(EdgeSettings()).openapi()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def generate(openapi_path: Path, models_path: Path) -> None:
    openapi_path.write_text(openapi_document())
    command = [
        sys.executable, "-m", "datamodel_code_generator",
        "--input", str(openapi_path), "--input-file-type", "openapi",
        "--output-model-type", "pydantic_v2.BaseModel", "--target-python-version", "3.11",
        "--use-standard-collections", "--use-union-operator", "--field-constraints", "--use-annotated",
        "--formatters", "builtin", "--disable-timestamp", "--custom-file-header", HEADER,
        "--output", str(models_path),
    ]  # fmt: skip
    # Run from the repository root so the formatter reads the same pyproject.toml every time.
    subprocess.run(command, check=True, cwd=CLIENTS.parent, capture_output=True)


def check() -> int:
    # Inside clients/: the formatter reads its line length from the pyproject.toml above the output.
    with tempfile.TemporaryDirectory(dir=CLIENTS) as tmp:
        fresh_openapi, fresh_models = Path(tmp) / "openapi.json", Path(tmp) / "models.py"
        generate(fresh_openapi, fresh_models)
        stale = [
            str(path.relative_to(CLIENTS.parent))
            for path, fresh in ((OPENAPI, fresh_openapi), (MODELS, fresh_models))
            if not path.exists() or path.read_text() != fresh.read_text()
        ]
    if stale:
        print(f"generated SDK models are stale: {', '.join(stale)}; run `make sdk`", file=sys.stderr)
        return 1
    print("generated SDK models are up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when committed output is stale")
    if parser.parse_args().check:
        return check()
    generate(OPENAPI, MODELS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
