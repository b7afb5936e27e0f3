"""CustomResourceDefinitions: what a definition serves, and its status.

Pure functions over ``apiextensions.k8s.io/v1`` CustomResourceDefinition
objects; :mod:`devcluster.controllers.crds` applies them to the registry and
writes the status, as the apiserver's naming and establishing controllers do:

- every ``served`` version of ``spec.versions`` is served at
  ``/apis/<group>/<version>/[namespaces/<ns>/]<plural>`` with the ordinary
  verbs (watch included), the ``status`` subresource when the version lists
  ``subresources.status`` (then main-resource writes keep the old status);
- the version's ``schema.openAPIV3Schema`` validates its objects;
- the status carries ``acceptedNames`` (the spec's names once no other
  definition holds them), ``storedVersions`` and the conditions
  ``NamesAccepted`` and ``Established`` (what ``helm install`` and
  ``kubectl wait --for condition=established`` wait for).

Not implemented: conversion webhooks, the ``scale`` subresource, pruning of
unknown fields, ``additionalPrinterColumns`` (tables show name and age),
CEL validation rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from devcluster.apiserver.resources import Resource

Obj = dict[str, Any]


def served(crd: Mapping[str, Any]) -> list[tuple[Resource, tuple[str, ...], Obj]]:
    """Return ``(resource, subresources, openAPIV3Schema)`` per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    found = []
    for version in spec.get("versions") or []:
        if not version.get("served"):
            continue
        subresources = version.get("subresources") or {}
        res = Resource(
            plural=str(names.get("plural", "")),
            kind=str(names.get("kind", "")),
            group=str(spec.get("group", "")),
            version=str(version.get("name", "")),
            namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            status="status" in subresources,
            singular=str(names.get("singular") or ""),
        )
        subs = ("status",) if res.status else ()
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
        found.append((res, subs, dict(schema)))
    return found


def names_conflict(crd: Mapping[str, Any], others: Iterable[Mapping[str, Any]]) -> str:
    """Return why the definition's names are refused ("" when they are free).

    Another definition of the same group that already accepted the plural or
    the kind keeps them (the naming controller's rule).
    """
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    own = (crd.get("metadata") or {}).get("name")
    for other in others:
        if (other.get("metadata") or {}).get("name") == own:
            continue
        if (other.get("spec") or {}).get("group") != spec.get("group"):
            continue
        accepted = (other.get("status") or {}).get("acceptedNames") or {}
        if accepted.get("plural") == names.get("plural"):
            return f'"{names.get("plural")}" is already in use'
        if accepted.get("kind") == names.get("kind"):
            return f'"{names.get("kind")}" is already in use'
    return ""


def _condition(kind: str, ok: bool, reason: str, message: str, now: str) -> Obj:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    }


def status_of(crd: Mapping[str, Any], conflict: str, now: str) -> Obj:
    """Return the status the naming and establishing controllers give ``crd``.

    Conditions keep their ``lastTransitionTime`` while their status holds.
    """
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    old = crd.get("status") or {}
    before = {c.get("type"): c for c in old.get("conditions") or []}
    ok = not conflict
    wanted = [
        _condition(
            "NamesAccepted",
            ok,
            "NoConflicts" if ok else "NameConflict",
            "no conflicts found" if ok else conflict,
            now,
        ),
        _condition(
            "Established",
            ok,
            "InitialNamesAccepted" if ok else "NotAccepted",
            "the initial names have been accepted"
            if ok
            else "not all names are accepted",
            now,
        ),
    ]
    conditions = []
    for cond in wanted:
        prior = before.get(cond["type"])
        if prior is not None and prior.get("status") == cond["status"]:
            cond["lastTransitionTime"] = prior.get("lastTransitionTime", now)
        conditions.append(cond)
    stored = [
        str(v.get("name")) for v in spec.get("versions") or [] if v.get("storage")
    ]
    versions = list(old.get("storedVersions") or [])
    versions += [v for v in stored if v not in versions]
    return {
        "acceptedNames": names if ok else dict(old.get("acceptedNames") or {}),
        "conditions": conditions,
        "storedVersions": versions,
    }


def established(crd: Mapping[str, Any]) -> bool:
    """Tell whether the definition's ``Established`` condition is True."""
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )
