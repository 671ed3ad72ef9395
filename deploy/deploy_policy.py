"""What deploy/validate.py checks beyond the tools' own validation, as pure functions of parsed files.

Kept apart from the runner so tests can feed them small broken inputs and see each problem reported.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from typing import Any

# Service name (entry point argument) -> the package `python -m` runs.
SERVICES = {
    "bidder": "core_bidder",
    "edge": "edge_gateway",
    "fanout": "fanout",
    "relay": "relay",
    "archiver": "archiver",
}
GRPC_SERVICES = {"bidder", "archiver"}
HTTP_SERVICES = {"edge", "fanout"}


def docker_context_includes(patterns: list[str], path: str) -> bool:
    """Whether a .dockerignore (`*` then `!allowed` lines) lets `path` into the build context."""
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
            included = negated
    return included


def compose_policy(config: Mapping[str, Any], own_image: str) -> list[str]:
    """Every service has a health check and waits for healthy dependencies; ours run read-only."""
    problems: list[str] = []
    for name, service in config["services"].items():
        if "healthcheck" not in service and name != "locust":
            problems.append(f"compose service {name}: no healthcheck")
        for dependency, how in (service.get("depends_on") or {}).items():
            if how.get("condition") != "service_healthy":
                problems.append(f"compose service {name}: depends_on {dependency} is not service_healthy")
            if dependency not in config["services"]:
                problems.append(f"compose service {name}: depends on unknown service {dependency}")
        if service.get("image") == own_image:
            if not service.get("read_only"):
                problems.append(f"compose service {name}: root filesystem is not read_only")
            if "ALL" not in (service.get("cap_drop") or []):
                problems.append(f"compose service {name}: capabilities not dropped")
    return problems


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from pod.get("initContainers") or []
    yield from pod.get("containers") or []


def kubernetes_policy(docs: list[dict[str, Any]], external_secrets: set[str]) -> list[str]:
    """What schemas cannot see: hardening, probes, and objects that must refer to each other."""
    problems: list[str] = []
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}
    templates = {name: w["spec"]["template"] for name, w in workloads.items()}

    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        labels = workload["spec"]["template"]["metadata"].get("labels", {})
        where = f"{workload['kind']} {name}"
        if not _matches(workload["spec"]["selector"].get("matchLabels", {}), labels):
            problems.append(f"{where}: selector does not match its pod labels")
        for spread in pod.get("topologySpreadConstraints") or []:
            if not _matches(spread.get("labelSelector", {}).get("matchLabels", {}), labels):
                problems.append(f"{where}: topologySpreadConstraints selector does not match its own pods")
        pod_security = pod.get("securityContext") or {}
        for container in _containers(pod):
            cwhere = f"{where} container {container['name']}"
            security = container.get("securityContext") or {}
            if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
                problems.append(f"{cwhere}: not runAsNonRoot")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cwhere}: root filesystem not read-only")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cwhere}: allowPrivilegeEscalation not false")
            resources = container.get("resources") or {}
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(kind) or {}):
                        problems.append(f"{cwhere}: no {kind}.{resource}")
            port_names = {port.get("name") for port in container.get("ports") or []}
            for probe_kind in ("readinessProbe", "livenessProbe"):
                probe = container.get(probe_kind)
                if probe is None:
                    problems.append(f"{cwhere}: no {probe_kind}")
                    continue
                for handler in probe.values():
                    port = handler.get("port") if isinstance(handler, dict) else None
                    if isinstance(port, str) and port not in port_names:
                        problems.append(f"{cwhere}: {probe_kind} uses undeclared port {port!r}")
            service = (container.get("args") or [""])[0]
            readiness = container.get("readinessProbe") or {}
            if service in GRPC_SERVICES and "grpc" not in readiness:
                problems.append(f"{cwhere}: gRPC service without a native grpc readiness probe")
            if service in HTTP_SERVICES and "httpGet" not in readiness:
                problems.append(f"{cwhere}: HTTP service without an httpGet readiness probe")
            env = {item["name"]: item.get("value") for item in container.get("env") or []}
            if service == "fanout":
                pre_stop = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {})
                needed = (
                    int(pre_stop.get("seconds", 0))
                    + float(env.get("FANOUT_SHUTDOWN_TIMEOUT_SECONDS") or 3)
                    + 10
                )
                if pod.get("terminationGracePeriodSeconds", 30) < needed:
                    problems.append(
                        f"{cwhere}: terminationGracePeriodSeconds below preStop + shutdown + 10 s"
                    )
            for item in container.get("env") or []:
                source = item.get("valueFrom") or {}
                for ref_kind, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    ref = source.get(ref_kind)
                    if ref is None:
                        continue
                    target = by_kind.get(kind, {}).get(ref["name"])
                    if target is None:
                        if not (kind == "Secret" and ref["name"] in external_secrets):
                            problems.append(
                                f"{cwhere}: {item['name']} refers to missing {kind} {ref['name']}"
                            )
                    elif ref["key"] not in {**target.get("data", {}), **target.get("stringData", {})}:
                        problems.append(
                            f"{cwhere}: {item['name']} refers to missing key {ref['key']} of {ref['name']}"
                        )

    for name, service in by_kind.get("Service", {}).items():
        selector = service["spec"].get("selector", {})
        if not any(_matches(selector, t["metadata"].get("labels", {})) for t in templates.values()):
            problems.append(f"Service {name}: selector matches no pods")
    budgets = by_kind.get("PodDisruptionBudget", {})
    for name, budget in budgets.items():
        if not any(
            _matches(budget["spec"]["selector"]["matchLabels"], t["metadata"].get("labels", {}))
            for t in templates.values()
        ):
            problems.append(f"PodDisruptionBudget {name}: selector matches no pods")
    for name, deployment in by_kind.get("Deployment", {}).items():
        labels = deployment["spec"]["template"]["metadata"].get("labels", {})
        if not any(_matches(b["spec"]["selector"]["matchLabels"], labels) for b in budgets.values()):
            problems.append(f"Deployment {name}: no PodDisruptionBudget")
    autoscalers = by_kind.get("HorizontalPodAutoscaler", {})
    scaled = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in autoscalers.values()}
    for name in scaled - set(by_kind.get("Deployment", {})):
        problems.append(f"HorizontalPodAutoscaler targets missing Deployment {name}")
    for name in HTTP_SERVICES - scaled:
        problems.append(f"Deployment {name}: no HorizontalPodAutoscaler")
    return problems


# A reference: var.x, local.x, data.<type>.<name>, module.x, or <provider>_<type>.<name>.
REFERENCE = re.compile(
    r"(?<![\w.\-])(?:(var|local|module)\.(\w+)|data\.(\w+)\.(\w+)|((?:aws|random)_\w+)\.(\w+))"
)


def _unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def terraform_structure(files: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Variables typed and described, outputs described, variables used, references defined."""
    problems: list[str] = []
    variables: set[str] = set()
    locals_: set[str] = set()
    resources: set[tuple[str, str]] = set()
    data: set[tuple[str, str]] = set()
    modules: set[str] = set()
    for path, tree in files.items():
        for block in tree.get("variable", []):
            for label, body in block.items():
                name = _unquote(label)
                variables.add(name)
                if not _unquote(str(body.get("description", ""))).strip():
                    problems.append(f"{path}: variable {name} has no description")
                if "type" not in body:
                    problems.append(f"{path}: variable {name} has no type")
        for block in tree.get("output", []):
            for label, body in block.items():
                if not _unquote(str(body.get("description", ""))).strip():
                    problems.append(f"{path}: output {_unquote(label)} has no description")
        for block in tree.get("locals", []):
            locals_ |= {key for key in block if not key.startswith("__")}
        for kind, into in (("resource", resources), ("data", data)):
            for block in tree.get(kind, []):
                for type_label, named in block.items():
                    into |= {(_unquote(type_label), _unquote(name)) for name in named}
        for block in tree.get("module", []):
            modules |= {_unquote(label) for label in block}

    used_variables: set[str] = set()
    for path, tree in files.items():
        for text in _strings(tree):
            if "${" not in text:
                continue
            for match in REFERENCE.finditer(text):
                prefix, name, data_type, data_name, resource_type, resource_name = match.groups()
                if prefix == "var":
                    used_variables.add(name)
                    if name not in variables:
                        problems.append(f"{path}: var.{name} is not declared")
                elif prefix == "local" and name not in locals_:
                    problems.append(f"{path}: local.{name} is not defined")
                elif prefix == "module" and name not in modules:
                    problems.append(f"{path}: module.{name} is not declared")
                elif data_type and (data_type, data_name) not in data:
                    problems.append(f"{path}: data.{data_type}.{data_name} is not declared")
                elif resource_type and (resource_type, resource_name) not in resources:
                    problems.append(f"{path}: {resource_type}.{resource_name} is not declared")
    problems += [f"variable {name} is never used" for name in sorted(variables - used_variables)]
    return sorted(set(problems))
