"""Helpers for testing the Helm chart helm/ciwatch: real rendering and policy checks.

:func:`render` renders the chart with Helm's own engine (helm_python, no cluster)
and returns the manifests parsed. :func:`restricted_violations` checks a pod
spec against the Kubernetes *restricted* Pod Security Standard (which includes
*baseline*), control by control as kubernetes.io/docs/concepts/security/pod-security-standards
lists them, plus the read-only root filesystem ciwatch requires. Tests of other
charts or manifests (a kind test, a kustomize overlay) can use it as it is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python
import yaml

from tests.ops import REPO_ROOT

__all__ = [
    "CHART_DIR",
    "find",
    "pod_spec",
    "render",
    "restricted_violations",
]

CHART_DIR = REPO_ROOT / "helm" / "ciwatch"

# Baseline: capabilities a container may add (the runtime's default set).
_BASELINE_CAPABILITIES = frozenset(
    {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD"}
    | {"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
)
_SAFE_SYSCTLS = frozenset(
    {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies"}
    | {"net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}
    | {"net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time"}
    | {"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl"}
    | {"net.ipv4.tcp_keepalive_probes"}
)
_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"}) | {
    "container_engine_t"
}
# Restricted: every volume must be one of these kinds.
_RESTRICTED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral"}
    | {"persistentVolumeClaim", "projected", "secret"}
)
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@functools.cache
def _chart(path: Path) -> helm_python.Chart:
    return helm_python.Chart.load(path)


def render(
    values: dict[str, Any] | None = None,
    *,
    release: str = "ciwatch",
    namespace: str = "security",
    chart: Path = CHART_DIR,
) -> list[dict[str, Any]]:
    """Every manifest the chart renders with ``values``, parsed; empty documents dropped.

    Raises helm_python.HelmValuesError when the values break values.schema.json and
    helm_python.HelmRenderError when a template fails (``fail`` or ``required``).
    """
    loaded = _chart(chart)
    loaded.validate_schema(values or {})
    rendered = loaded.render(values or {}, name=release, namespace=namespace)
    manifests: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        manifests.extend(doc for doc in yaml.safe_load_all(rendered[path]) if doc)
    return manifests


def find(
    manifests: list[dict[str, Any]], kind: str, name: str | None = None
) -> list[dict[str, Any]]:
    """The manifests of ``kind`` (and ``metadata.name``, when given)."""
    return [
        m
        for m in manifests
        if m.get("kind") == kind and (name is None or m["metadata"]["name"] == name)
    ]


def pod_spec(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod spec of the chart's only StatefulSet."""
    (statefulset,) = find(manifests, "StatefulSet")
    spec: dict[str, Any] = statefulset["spec"]["template"]["spec"]
    return spec


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in _CONTAINER_LISTS:
        for container in spec.get(field) or ():
            yield f"{field}[{container.get('name', '?')}]", container


def restricted_violations(
    pod_spec: Mapping[str, Any], *, annotations: Mapping[str, str] | None = None
) -> list[str]:
    """What in ``pod_spec`` breaks the restricted Pod Security Standard, one line each.

    ``annotations``: the pod's metadata annotations, for the legacy AppArmor
    control. Empty when the pod passes. Beyond the standard, every container
    must also have ``readOnlyRootFilesystem: true``.
    """
    problems = _host_violations(pod_spec) + _volume_violations(pod_spec)
    problems += _pod_context_violations(pod_spec.get("securityContext") or {})
    pod_context = pod_spec.get("securityContext") or {}
    for where, container in _containers(pod_spec):
        problems += [f"{where}: {p}" for p in _container_violations(container, pod_context)]
    for key, value in (annotations or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            problems.append(f"annotation {key}: AppArmor profile {value}")
    return problems


def _host_violations(spec: Mapping[str, Any]) -> list[str]:
    """Baseline: host namespaces, HostProcess, host ports, probe and hook hosts."""
    problems = [
        f"spec.{field} is true"
        for field in ("hostNetwork", "hostPID", "hostIPC")
        if spec.get(field)
    ]
    if (spec.get("securityContext") or {}).get("windowsOptions", {}).get("hostProcess"):
        problems.append("spec.securityContext.windowsOptions.hostProcess is true")
    for where, container in _containers(spec):
        if (container.get("securityContext") or {}).get("windowsOptions", {}).get("hostProcess"):
            problems.append(f"{where}: windowsOptions.hostProcess is true")
        for port in container.get("ports") or ():
            if port.get("hostPort"):
                problems.append(f"{where}: hostPort {port['hostPort']}")
        for handler_name, handler in _handlers(container):
            for kind in ("httpGet", "tcpSocket"):
                if (handler.get(kind) or {}).get("host"):
                    problems.append(f"{where}: {handler_name}.{kind}.host is set")
    return problems


def _handlers(container: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if container.get(probe):
            yield probe, container[probe]
    for hook, handler in (container.get("lifecycle") or {}).items():
        yield f"lifecycle.{hook}", handler


def _volume_violations(spec: Mapping[str, Any]) -> list[str]:
    """Baseline: no hostPath. Restricted: only the listed volume kinds."""
    problems = []
    for volume in spec.get("volumes") or ():
        kinds = set(volume) - {"name"}
        if "hostPath" in kinds:
            problems.append(f"volume {volume.get('name')}: hostPath")
        elif not kinds <= _RESTRICTED_VOLUMES or not kinds:
            problems.append(f"volume {volume.get('name')}: type {sorted(kinds)} not allowed")
    return problems


def _pod_context_violations(context: Mapping[str, Any]) -> list[str]:
    """Pod-level fields: sysctls, SELinux, non-root user and groups."""
    problems = [_selinux_problem("spec.securityContext", context)]
    for sysctl in context.get("sysctls") or ():
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            problems.append(f"spec.securityContext.sysctls: {sysctl.get('name')} is not safe")
    if context.get("runAsUser") == 0:
        problems.append("spec.securityContext.runAsUser is 0")
    for field in ("runAsGroup", "fsGroup"):
        if context.get(field) == 0:
            problems.append(f"spec.securityContext.{field} is 0")
    if 0 in (context.get("supplementalGroups") or ()):
        problems.append("spec.securityContext.supplementalGroups has 0")
    problems.append(_apparmor_problem("spec.securityContext", context))
    problems.append(_seccomp_problem("spec.securityContext", context, required=False))
    return [p for p in problems if p]


def _container_violations(container: Mapping[str, Any], pod: Mapping[str, Any]) -> list[str]:
    """Container-level fields; pod-level runAsNonRoot and seccomp may stand in."""
    context = container.get("securityContext") or {}
    problems = [
        _selinux_problem("securityContext", context),
        _apparmor_problem("securityContext", context),
        _seccomp_problem("securityContext", context, required=not _seccomp_ok(pod)),
    ]
    if context.get("privileged"):
        problems.append("privileged is true")
    if context.get("procMount", "Default") != "Default":
        problems.append(f"procMount is {context['procMount']}")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    non_root = context.get("runAsNonRoot", pod.get("runAsNonRoot"))
    if non_root is not True:
        problems.append("runAsNonRoot is not true (in the container or the pod)")
    if context.get("runAsUser") == 0:
        problems.append("runAsUser is 0")
    if context.get("runAsGroup") == 0:
        problems.append("runAsGroup is 0")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or ()):
        problems.append("capabilities.drop does not include ALL")
    added = set(capabilities.get("add") or ())
    if added - {"NET_BIND_SERVICE"}:
        problems.append(f"capabilities.add has {sorted(added - {'NET_BIND_SERVICE'})}")
    if not added <= _BASELINE_CAPABILITIES:
        problems.append(f"capabilities.add beyond the baseline: {sorted(added)}")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    return [p for p in problems if p]


def _selinux_problem(where: str, context: Mapping[str, Any]) -> str:
    options = context.get("seLinuxOptions") or {}
    if options.get("type", "") not in _SELINUX_TYPES:
        return f"{where}.seLinuxOptions.type is {options['type']}"
    if options.get("user") or options.get("role"):
        return f"{where}.seLinuxOptions sets a user or role"
    return ""


def _apparmor_problem(where: str, context: Mapping[str, Any]) -> str:
    kind = (context.get("appArmorProfile") or {}).get("type")
    if kind not in (None, "RuntimeDefault", "Localhost"):
        return f"{where}.appArmorProfile.type is {kind}"
    return ""


def _seccomp_ok(context: Mapping[str, Any]) -> bool:
    return (context.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")


def _seccomp_problem(where: str, context: Mapping[str, Any], *, required: bool) -> str:
    kind = (context.get("seccompProfile") or {}).get("type")
    if kind is None and not required:
        return ""
    if kind not in ("RuntimeDefault", "Localhost"):
        return f"{where}.seccompProfile.type is {kind} (RuntimeDefault or Localhost required)"
    return ""
