"""Benchmark of the hub-side cost of a spawn: WorkbenchSpawner vs plain KubeSpawner.

What the hub itself spends per spawn, without the cluster: render the spawn form,
check and apply the chosen options, build the pod manifest. Both spawners get the
same sizes: plain KubeSpawner a static ``profile_list`` (the one
``wbspawner.spawn.form.kubespawner_profiles`` renders for the user, made plain by
``plain_profile_list``), WorkbenchSpawner the profiles themselves (it renders
that list per request, checks the options
with ``wbspawner.spawn.selection``, reads the uid/gid and the home's zone, applies
``wbspawner.spawn.manifests.overrides_for``). The workbench's form is its own card
template (``wbspawner/pages/templates/spawn-form.html``), compiled once per process;
plain KubeSpawner builds a Jinja2 environment and compiles its ``form.html`` on
every render, which is most of its form's time. Both run in this process, interleaved,
in one run, so the ratio does not depend on the machine's speed. The home-zone
read goes to an in-process fake API (no network), like the unit tests.

Plain KubeSpawner's form shows only each entry's ``display_name`` and
``description``, and the workbench's entries carry no description (their cards
are the form). So that the baseline shows the same information, this bench
builds each entry's description itself from the entry's card (hardware, prices,
refusal, wait, the admin's note, as escaped HTML lines), from the same warm
status and cold starts the workbench reads, and leaves the card out of plain
KubeSpawner's list. That is bench-only code: the product builds no HTML
description.

Also: the time to render the form of a user who may pick 50 sizes, side by side
with plain KubeSpawner given the same 50 entries through a callable
``profile_list`` (what per-group lists need; KubeSpawner renders a static list
once and keeps it). The workbench reads what it reads in production on every
render: the warmer's status file and the medians of its observed cold starts,
both full (every pool and zone, from the most samples the warmer keeps).

Writes ``bench/results/spawner.json``.
Run: ``.venv/bin/python bench/bench_spawner.py [--spawns N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import html
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "spawner.json"
OFFLINE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: offline, user: {}}]
contexts: [{name: offline, context: {cluster: offline, user: offline}}]
current-context: offline
"""
OPTIONS = {"profile": "large", "image": "datascience"}


def plain_profile_list(profiles: Any) -> list[dict[str, Any]]:
    """Return bob's sizes as plain KubeSpawner's ``profile_list``.

    The entries the workbench renders for him (with the warm status and cold
    starts of ``STATE_FILES``), each without its card and with a ``description``
    built from the card: KubeSpawner's ``form.html`` inserts it as HTML, so every
    line is escaped.
    """
    from wbspawner.adapters import statefiles
    from wbspawner.spawn.form import CARD, kubespawner_profiles
    from wbspawner.spawn.waits import Waits

    warm = statefiles.read_warm_status(STATE_FILES["warm_status_file"])
    times = statefiles.read_wait_times(STATE_FILES["wait_times_file"])
    ready = warm.by_pool() if warm else None
    entries = kubespawner_profiles(
        profiles, ["jupyter-users"], False, ready, waits=Waits(times=times)
    )
    out = []
    for entry in entries:
        card = entry[CARD]
        lines = (
            card.hardware,
            card.on_demand,
            card.spot,
            card.unavailable,
            card.wait,
            card.note,
        )
        plain = {k: v for k, v in entry.items() if k != CARD}
        plain["description"] = "<br>".join(html.escape(x) for x in lines if x)
        out.append(plain)
    return out


def offline_kubeconfig(directory: Path) -> None:
    """Point KubeSpawner's client setup at a kubeconfig that is never contacted."""
    import kubernetes_asyncio.config.kube_config as kube_config

    path = directory / "kubeconfig"
    path.write_text(OFFLINE_KUBECONFIG, encoding="utf-8")
    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(path)


class User:
    """What a spawner reads of a hub user."""

    def __init__(self, groups: list[str]) -> None:
        from jupyterhub.objects import Server

        self.name = "bob"
        self.id = 1
        self.admin = False
        self.groups = [SimpleNamespace(name=g) for g in groups]
        self.server = Server()
        self.url = "/user/bob/"
        self.escaped_name = "bob"

    async def get_auth_state(self) -> dict[str, Any]:
        return {"uidNumber": 10002, "gidNumber": 100}


class NoHomeYet:
    """The reads the spawner makes for the home (``adapters.kube.Kube``'s answers
    for a user without a home claim nor a move of it under way)."""

    async def get_pvc(self, namespace: str, name: str) -> None:
        return None

    async def list_pvs(self, selector: str | None = None) -> list[dict[str, Any]]:
        return []


def write_state_files(directory: Path, profiles: Any) -> dict[str, str]:
    """Write a full warm status and wait times file; return the spawner's traits."""
    from datetime import UTC, datetime, timedelta

    from wbspawner.adapters import statefiles
    from wbspawner.model import WaitSample, WarmStatus
    from wbspawner.spawn.waits import KEEP, summarize

    pools = profiles.pools.values()
    warm = WarmStatus.of({p.name: dict.fromkeys(p.zones, 0) for p in pools})
    at = datetime(2026, 12, 7, 9, tzinfo=UTC)
    samples = [
        WaitSample(
            uid=f"{p.name}-{zone}-{kind}-{i}",
            pool=p.name,
            zone=zone,
            at=at + timedelta(minutes=i),
            boot_s=19.0 + i,
            start_s=6.0 + i if kind == "user" else None,
        )
        for p in pools
        for zone in p.zones
        for kind in ("user", "placeholder")
        for i in range(KEEP)
    ]
    files = {
        "warm_status_file": str(directory / "warm-status.json"),
        "wait_times_file": str(directory / "wait-times.json"),
    }
    statefiles.write_warm_status(files["warm_status_file"], warm)
    statefiles.write_wait_times(files["wait_times_file"], summarize(samples))
    return files


STATE_FILES: dict[str, str] = {}
"""The workbench spawner's state files (``write_state_files``), set by ``main``."""


def make(kind: str, profiles: Any, static_list: Any) -> Any:
    """Build one spawner of ``kind`` (``workbench`` or ``kube``) for bob.

    ``static_list`` is plain KubeSpawner's ``profile_list``: a list, or a callable.
    """
    from jupyterhub.objects import Hub
    from kubespawner import KubeSpawner
    from traitlets.config import Config

    from wbspawner.hub.hubconfig import StaticProfiles
    from wbspawner.hub.spawner import WorkbenchSpawner

    c = Config()
    c.KubeSpawner.namespace = "jhub"
    if kind == "workbench":
        source = StaticProfiles(profiles)
        c.WorkbenchSpawner.profiles_source = lambda: source
        for name, value in STATE_FILES.items():
            setattr(c.WorkbenchSpawner, name, value)
        cls: Any = WorkbenchSpawner
    else:
        c.KubeSpawner.profile_list = static_list
        cls = KubeSpawner
    spawner = cls(
        hub=Hub(),
        user=User(["jupyter-users"]),
        config=c,
        api_token="t",
        oauth_client_id="c",
    )
    if kind == "workbench":  # KubeSpawner reads nothing before the pod
        spawner.kube = NoHomeYet()
    return spawner


async def one_spawn(spawner: Any) -> float:
    """Time form render + option check/apply + pod manifest; return seconds."""
    started = time.perf_counter()
    form = await spawner.get_options_form()
    assert 'value="large"' in form
    spawner.user_options = dict(OPTIONS)
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    assert pod.spec.containers[0].image.endswith("datascience-notebook:2026-07-20")
    return time.perf_counter() - started


async def timed(runs: int, action: Callable[[], Awaitable[float]]) -> list[float]:
    return [await action() for _ in range(runs)]


async def compare(profiles: Any, spawns: int) -> dict[str, Any]:
    """Interleave WorkbenchSpawner and KubeSpawner spawns; return per-spawn ms."""
    static_list = plain_profile_list(profiles)
    times: dict[str, list[float]] = {"workbench": [], "kube": []}
    for kind in times:  # warm-up: imports, templates, caches
        await one_spawn(make(kind, profiles, static_list))
    for _ in range(spawns):
        for kind in times:
            spawner = make(kind, profiles, static_list)
            times[kind].append(await one_spawn(spawner))
    out = {k: round(statistics.median(v) * 1000, 3) for k, v in times.items()}
    return {
        "spawns_each": spawns,
        "workbench_ms_median": out["workbench"],
        "kubespawner_ms_median": out["kube"],
        "ratio_workbench_over_kubespawner": round(out["workbench"] / out["kube"], 3),
        "workbench_ms_p90": round(
            statistics.quantiles(times["workbench"], n=10)[-1] * 1000, 3
        ),
        "kubespawner_ms_p90": round(
            statistics.quantiles(times["kube"], n=10)[-1] * 1000, 3
        ),
    }


async def fifty_sizes(profiles: Any, renders: int) -> dict[str, Any]:
    """Median time to render the form of a user who may pick 50 sizes.

    Interleaved with plain KubeSpawner rendering the same 50 entries from a
    callable ``profile_list``.
    """
    from wbspawner.spawn.form import kubespawner_profiles

    base = profiles.size("medium")
    many = tuple(
        dataclasses.replace(base, slug=f"size-{i:02d}", default=i == 0)
        for i in range(50)
    )
    big = dataclasses.replace(profiles, sizes=many)
    entries = plain_profile_list(big)
    spawners = {
        "workbench": make("workbench", big, []),
        "kube": make("kube", big, lambda spawner: entries),
    }
    times: dict[str, list[float]] = {kind: [] for kind in spawners}
    forms: dict[str, str] = {}
    for kind, spawner in spawners.items():  # warm-up: templates, caches
        forms[kind] = await spawner.get_options_form()
        assert forms[kind].count('name="profile"') == 50, kind
    for _ in range(renders):
        for kind, spawner in spawners.items():
            started = time.perf_counter()
            forms[kind] = await spawner.get_options_form()
            times[kind].append(time.perf_counter() - started)
    assert all("Starts in about" in form for form in forms.values())
    started = time.perf_counter()
    for _ in range(renders):
        kubespawner_profiles(big, ["jupyter-users"], False)
    list_only = (time.perf_counter() - started) / renders
    medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return {
        "sizes": 50,
        "renders": renders,
        "form_render_ms_median": round(medians["workbench"], 3),
        "kubespawner_callable_form_ms_median": round(medians["kube"], 3),
        "ratio_workbench_over_kubespawner": round(
            medians["workbench"] / medians["kube"], 3
        ),
        "profile_list_only_ms": round(list_only * 1000, 3),
        "form_bytes": len(forms["workbench"]),
        "kubespawner_form_bytes": len(forms["kube"]),
        "workbench_reads": sorted(STATE_FILES),
    }


def load_shipped_profiles() -> Any:
    from wbspawner.profiles.loader import load_profiles

    return load_profiles([REPO / "profiles"])


async def main_async(spawns: int) -> dict[str, Any]:
    profiles = load_shipped_profiles()
    result = {"per_spawn": await compare(profiles, spawns)}
    result["form_50_sizes"] = await fifty_sizes(profiles, max(40, spawns))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=200, help="spawns per spawner")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        offline_kubeconfig(Path(tmp))
        STATE_FILES.update(write_state_files(Path(tmp), load_shipped_profiles()))
        result = asyncio.run(main_async(args.spawns))
    result.update(
        python=platform.python_version(),
        cpus=os.cpu_count(),
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
