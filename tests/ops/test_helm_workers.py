"""The chart's ``workers`` value: ``ciwatch run --workers N`` in each replica's container."""

from __future__ import annotations

import re

import helm_python
import kubernetes_validate
import pytest

from tests.ops.chart import find, pod_spec, render, restricted_violations
from tests.ops.chart_values import KUBE_VERSION


def test_one_worker_keeps_the_plain_command() -> None:
    (container,) = pod_spec(render())["containers"]
    assert container["args"] == ["run", "--config", "/etc/ciwatch/pipeline.yaml"]


def test_two_workers_run_in_each_replica() -> None:
    manifests = render({"workers": 2, "replicaCount": 2})
    for manifest in manifests:
        if manifest["kind"] not in {"ServiceMonitor", "PrometheusRule"}:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
    spec = pod_spec(manifests)
    (container,) = spec["containers"]
    assert container["args"] == [
        "run", "--config", "/etc/ciwatch/pipeline.yaml", "--workers", "2",
    ]  # fmt: skip
    # The workers listen on loopback: the pod still exposes only the parent's port.
    assert [port["containerPort"] for port in container["ports"]] == [9464]
    assert restricted_violations(spec) == []
    (statefulset,) = find(manifests, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 2


@pytest.mark.parametrize("workers", [0, 65, "2"])
def test_schema_bounds_workers(workers: object) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=re.escape("/workers")):
        render({"workers": workers})
