"""A Kubernetes policy scanner on every rendered release: no finding goes unexplained.

Each release is rendered with `helm template` from the chart archives and the
values in ``helm-values/`` (the jupyterhub release together with the Dask
dashboards front, the dask-gateway release with both of its NetworkPolicy files:
the files operators apply beside them). checkov, pinned in
``constraints-checkov.txt`` and installed into ``.cache/checkov`` by
``make checkov``, then scans the rendered objects. A test fails on any finding
that ``helm-values/policy-skips.yaml`` does not list with a reason, and on any
entry there that no longer fires.

Findings per release, leaving aside the three checks the skip file turns off
everywhere (namespace, image digest, pull policy):

==================  ===========  ==================  ============================
release             stock chart  repo values before  now (each one justified)
==================  ===========  ==================  ============================
jupyterhub          58           16                  4 (hub 3, proxy 1)
dask-gateway        46           38 (35)             32 (the chart cannot say more)
cluster-autoscaler  14           14                  2
==================  ===========  ==================  ============================

"stock chart" is the chart's defaults (the autoscaler with only a cluster name
for auto-discovery) and the dask-gateway release without NetworkPolicy files;
"before" is this repository's values before the hardening, in brackets with
``dask-networkpolicy.yaml`` applied. The dask-gateway chart has no value for a
securityContext, service-account token, volumes or the controller's probes, so
most of its findings are explained rather than fixed.

checkov's NetworkPolicy check reads only ``matchLabels``: it ignores namespaces
and ``matchExpressions`` (a selector with none but those selects every pod to
it), which is why ``dask-networkpolicy.yaml``, a policy for the Dask pods only,
hid the gateway's three unprotected pods from it. So
:func:`test_every_pod_is_isolated_by_a_network_policy` checks the same with the
Kubernetes rules.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.helm_support import HELM_VALUES, REPO, helm_template
from wbspawner.gateway.netpol import selects

pytestmark = pytest.mark.integration

SKIPS = HELM_VALUES / "policy-skips.yaml"
PINS = REPO / "constraints-checkov.txt"
CHECKOV = REPO / ".cache" / "checkov" / "bin" / "checkov"
CHECK_ID = re.compile(r"CKV2?_K8S_[0-9]+")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
"""Kinds whose ``spec.template`` is a pod (none of the releases renders a bare Pod)."""


@dataclass(frozen=True)
class Release:
    """One helm release as docs/deploy-eks.md installs it."""

    name: str
    chart: str
    namespace: str
    values: str
    static: tuple[str, ...] = ()
    """Files of plain objects applied with the release (``kubectl apply -f``)."""


RELEASES = {
    "jupyterhub": Release(
        "jhub",
        "jupyterhub-4.4.0.tgz",
        "jhub",
        "jupyterhub.yaml",
        ("dask-dashboards.yaml", "hub-rbac.yaml", "ssh.yaml"),
    ),
    "dask-gateway": Release(
        "dask-gateway",
        "dask-gateway-2026.3.0.tgz",
        "dask-gateway",
        "dask-gateway.yaml",
        ("dask-networkpolicy.yaml", "dask-gateway-networkpolicy.yaml"),
    ),
    "cluster-autoscaler": Release(
        "cluster-autoscaler",
        "cluster-autoscaler-9.59.0.tgz",
        "kube-system",
        "cluster-autoscaler.yaml",
    ),
}


@dataclass(frozen=True)
class Scan:
    """What checkov said about one release."""

    objects: list[dict[str, Any]]
    failed: dict[tuple[str, str], str]
    """(check id, ``Kind/name``) → the check's name."""
    scanned: set[str]
    """``Kind/name`` of every object checkov ran a check on."""
    version: str
    parsing_errors: int


def _object(resource: str) -> str:
    """``Kind/name`` of a checkov resource id such as ``Deployment.jhub.hub``.

    The graph checks name a workload's pod ``Pod.<ns>.<name>.<labels…>``.
    """
    kind, _namespace, rest = resource.split(".", 2)
    return f"{kind}/{rest.split('.', 1)[0] if kind == 'Pod' else rest}"


def _pinned_version() -> str:
    found = re.search(r"^checkov==(\S+)$", PINS.read_text(encoding="utf-8"), re.M)
    assert found, f"{PINS} pins no checkov version"
    return found.group(1)


def _render(release: Release) -> list[dict[str, Any]]:
    objects = helm_template(
        release.name, release.chart, HELM_VALUES / release.values, release.namespace
    )
    for name in release.static:
        text = (HELM_VALUES / name).read_text(encoding="utf-8")
        objects += [d for d in yaml.safe_load_all(text) if d]
    return objects


def _checkov(path: Path) -> dict[str, Any]:
    assert CHECKOV.is_file(), (
        f"checkov is missing at {CHECKOV}: run `make checkov` (`make test` does), "
        "which installs the version of constraints-checkov.txt into its own venv"
    )
    argv = [str(CHECKOV), "--file", str(path), "--framework", "kubernetes"]
    # No downloads (no platform key, no update check) and no failing exit code:
    # the findings are judged below, a crash still fails.
    argv += ["--output", "json", "--compact", "--skip-download", "--soft-fail"]
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    (found,) = [r for r in reports if r.get("check_type") == "kubernetes"]
    return dict(found)


def _scan(release: Release, path: Path) -> Scan:
    objects = _render(release)
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
    report = _checkov(path)
    results = report["results"]
    failed = {
        (r["check_id"], _object(r["resource"])): r["check_name"]
        for r in results["failed_checks"]
    }
    scanned = {
        _object(r["resource"])
        for r in results["passed_checks"] + results["failed_checks"]
    }
    summary = report["summary"]
    return Scan(
        objects,
        failed,
        scanned,
        summary["checkov_version"],
        summary["parsing_errors"],
    )


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scan]:
    out = tmp_path_factory.mktemp("policy")
    return {key: _scan(r, out / f"{key}.yaml") for key, r in RELEASES.items()}


@dataclass(frozen=True)
class Skip:
    """One entry of the skip file: checks on some objects (or everywhere), and why."""

    checks: tuple[str, ...]
    reason: str
    resources: tuple[str, ...] = ()


def _skips() -> dict[str, list[Skip]]:
    data = yaml.safe_load(SKIPS.read_text(encoding="utf-8"))
    assert set(data) == {"global", *RELEASES}, sorted(data)
    return {
        section: [
            Skip(tuple(e["checks"]), e["reason"], tuple(e.get("resources", ())))
            for e in entries or []
        ]
        for section, entries in data.items()
    }


def _global_checks() -> set[str]:
    return {check for skip in _skips()["global"] for check in skip.checks}


def _release_skips(key: str) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for skip in _skips()[key]:
        for check in skip.checks:
            for resource in skip.resources:
                out[(check, resource)] = skip.reason
    return out


def test_every_skip_names_its_checks_and_says_why() -> None:
    """Entries are well formed: check ids, objects, a real reason, no repeats."""
    seen: set[tuple[str, str]] = set()
    for section, skips in _skips().items():
        for skip in skips:
            assert skip.checks, section
            assert all(CHECK_ID.fullmatch(c) for c in skip.checks), skip.checks
            # A reason an operator can verify, not a shrug.
            assert len(skip.reason.split()) >= 15, (section, skip.checks)
            if section == "global":
                assert not skip.resources, skip
                pairs = {(c, "*") for c in skip.checks}
            else:
                assert skip.resources, skip
                assert not set(skip.checks) & _global_checks(), skip
                for resource in skip.resources:
                    assert re.fullmatch(r"[A-Za-z]+/[a-z0-9.-]+", resource), resource
                pairs = {
                    (c, f"{section}:{r}") for c in skip.checks for r in skip.resources
                }
            assert not pairs & seen, sorted(pairs & seen)
            seen |= pairs


@pytest.mark.parametrize("key", list(RELEASES))
def test_scanner_is_the_pinned_one_and_read_every_workload(
    scans: dict[str, Scan], key: str
) -> None:
    scan = scans[key]
    assert scan.version == _pinned_version()
    assert scan.parsing_errors == 0
    workloads = {
        f"{d['kind']}/{d['metadata']['name']}"
        for d in scan.objects
        if d["kind"] in WORKLOADS
    }
    assert workloads, "the release renders no workload"
    assert workloads <= scan.scanned


@pytest.mark.parametrize("key", list(RELEASES))
def test_no_finding_is_left_unjustified(scans: dict[str, Scan], key: str) -> None:
    allowed = _release_skips(key)
    unjustified = sorted(
        f"{check} on {obj}: {name}"
        for (check, obj), name in scans[key].failed.items()
        if check not in _global_checks() and (check, obj) not in allowed
    )
    assert not unjustified, (
        f"{len(unjustified)} finding(s) in {key}; harden the values or justify "
        "them in helm-values/policy-skips.yaml:\n" + "\n".join(unjustified)
    )


@pytest.mark.parametrize("key", list(RELEASES))
def test_every_skip_still_fires(scans: dict[str, Scan], key: str) -> None:
    stale = sorted(set(_release_skips(key)) - set(scans[key].failed))
    assert not stale, f"no longer found, remove from policy-skips.yaml: {stale}"


def test_every_global_skip_fires_somewhere(scans: dict[str, Scan]) -> None:
    fired = {check for scan in scans.values() for check, _ in scan.failed}
    assert _global_checks() <= fired, _global_checks() - fired


def _pods(
    objects: list[dict[str, Any]], namespace: str
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """``Kind/name``, namespace and pod labels of every workload's pods."""
    for d in objects:
        if d["kind"] in WORKLOADS:
            name = f"{d['kind']}/{d['metadata']['name']}"
            ns = d["metadata"].get("namespace", namespace)
            yield name, ns, d["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("key", list(RELEASES))
def test_every_pod_is_isolated_by_a_network_policy(
    scans: dict[str, Scan], key: str
) -> None:
    """Each workload's pods are selected by an ingress policy of their namespace."""
    release = RELEASES[key]
    policies = [
        d
        for d in scans[key].objects
        if d["kind"] == "NetworkPolicy"
        and "Ingress" in d["spec"].get("policyTypes", ["Ingress"])
    ]
    for name, namespace, labels in _pods(scans[key].objects, release.namespace):
        assert any(
            p["metadata"].get("namespace", release.namespace) == namespace
            and selects(p["spec"]["podSelector"], labels)
            for p in policies
        ), f"no NetworkPolicy isolates the pods of {name}"
