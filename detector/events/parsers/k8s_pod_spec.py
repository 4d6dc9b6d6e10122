"""What a Kubernetes audit request asks of the nodes: privileged containers, host namespaces,
host paths, dangerous capabilities.

A pod template sits at a different depth in each workload kind (``spec`` for a Pod,
``spec.template.spec`` for Deployments and DaemonSets, ``spec.jobTemplate.spec.template.spec``
for CronJobs), and AKS delivers the whole audit event as a JSON string that rule conditions on
``raw.*`` cannot see into. The parser therefore summarises the request body once, as the
``pod_privileges`` attribute: a sorted, comma-separated list such as
``cap:SYS_ADMIN,host_path,privileged``.

>>> pod_privileges({"spec": {"hostPID": True, "containers": [{"securityContext":
...     {"privileged": True}}]}})
'host_pid,privileged'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any

__all__ = ["WORKLOAD_RESOURCES", "pod_privileges"]

WORKLOAD_RESOURCES = frozenset(
    {
        "pods",
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "replicationcontrollers",
        "jobs",
        "cronjobs",
    }
)
# Where a pod spec sits in each kind's request body, outermost first.
_SPEC_PATHS = (
    ("spec",),
    ("spec", "template", "spec"),
    ("spec", "jobTemplate", "spec", "template", "spec"),
)
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_HOST_FLAGS = (("hostPID", "host_pid"), ("hostNetwork", "host_network"), ("hostIPC", "host_ipc"))
# Capabilities that undo container isolation (module loading, ptrace of host processes,
# mount, raw devices, BPF, network stack control); Linux also accepts a CAP_ prefix.
_DANGEROUS_CAPABILITIES = frozenset(
    {
        "ALL",
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_BOOT",
        "DAC_READ_SEARCH",
        "NET_ADMIN",
        "BPF",
    }
)
# A request body is untrusted input: look at a bounded number of containers and volumes.
_MAX_ITEMS = 64


def pod_privileges(request_object: Any) -> str | None:
    """The node-level privileges a request body asks for, or None when it asks for none."""
    if not isinstance(request_object, Mapping):
        return None
    found: set[str] = set()
    for spec in _pod_specs(request_object):
        found.update(_spec_privileges(spec))
    return ",".join(sorted(found)) or None


def _pod_specs(request_object: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for path in _SPEC_PATHS:
        node: Any = request_object
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            yield node


def _spec_privileges(spec: Mapping[str, Any]) -> Iterator[str]:
    for field, flag in _HOST_FLAGS:
        if spec.get(field) is True:
            yield flag
    if any(isinstance(v, Mapping) and "hostPath" in v for v in _items(spec.get("volumes"))):
        yield "host_path"
    for key in _CONTAINER_LISTS:
        for container in _items(spec.get(key)):
            yield from _container_privileges(container)


def _container_privileges(container: Any) -> Iterator[str]:
    context = container.get("securityContext") if isinstance(container, Mapping) else None
    if not isinstance(context, Mapping):
        return
    if context.get("privileged") is True:
        yield "privileged"
    capabilities = context.get("capabilities")
    added = capabilities.get("add") if isinstance(capabilities, Mapping) else None
    for name in _items(added):
        if isinstance(name, str):
            bare = name.upper().removeprefix("CAP_")
            if bare in _DANGEROUS_CAPABILITIES:
                yield f"cap:{bare}"


def _items(value: Any) -> Iterator[Any]:
    return islice(value, _MAX_ITEMS) if isinstance(value, list) else iter(())
