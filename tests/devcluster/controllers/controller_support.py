"""Helpers of the controller tests: user pods, events, groups, priorities, sleep."""

from __future__ import annotations

import asyncio
from typing import Any

from devcluster.apiserver.store import Store
from devcluster.controllers.manager import Controllers
from tests.devcluster.objects_support import GPU, POOL, ZONE
from tests.node_groups_support import PRIORITIES
from wbspawner.catalog.instances import load_catalog
from wbspawner.catalog.sizing import node_request
from wbspawner.model import SizingSettings

CATALOG = load_catalog()


def user_pod(
    name: str,
    pool: str,
    itype: str,
    *,
    zone: str | None = None,
    gpus: int = 0,
    claim: str | None = None,
    priority_class_name: str | None = None,
) -> dict[str, Any]:
    req = node_request(CATALOG.types[itype], SizingSettings())
    resources = {"cpu": f"{req.cpu_m}m", "memory": f"{req.memory_mib}Mi"}
    if gpus:
        resources[GPU] = str(gpus)
    tolerations = [
        {"key": POOL, "operator": "Equal", "value": pool, "effect": "NoSchedule"}
    ]
    if gpus:
        tolerations.append({"key": GPU, "operator": "Exists", "effect": "NoSchedule"})
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "notebook",
                "image": "jupyter/base:1",
                "resources": {"requests": resources, "limits": resources},
            }
        ],
        "nodeSelector": {POOL: pool, **({ZONE: zone} if zone else {})},
        "tolerations": tolerations,
        "terminationGracePeriodSeconds": 1,
    }
    if claim:
        spec["volumes"] = [
            {"name": "home", "persistentVolumeClaim": {"claimName": claim}}
        ]
    if priority_class_name:
        spec["priorityClassName"] = priority_class_name
    return {"metadata": {"name": name}, "spec": spec}


def events(store: Store, name: str, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in store.items_raw("events")
        if e["involvedObject"]["name"] == name and e["reason"] == reason
    ]


def group_status(controllers: Controllers, name: str) -> dict[str, Any]:
    return next(g for g in controllers.status()["groups"] if g["name"] == name)


def node_of(store: Store, pod: str) -> str | None:
    return store.get("pods", "jhub", pod)["spec"].get("nodeName")


def priorities(store: Store) -> None:
    store.create(
        "configmaps",
        "kube-system",
        {
            "metadata": {"name": "cluster-autoscaler-priority-expander"},
            "data": {"priorities": PRIORITIES},
        },
    )


async def sleep(seconds: float) -> None:
    """Sleep in real seconds (the controllers run meanwhile)."""
    await asyncio.sleep(seconds)
