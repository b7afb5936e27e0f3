"""IAM roles for service accounts: what the EKS pod identity webhook adds to pods.

A mutating admission step for new pods, as the amazon-eks-pod-identity-webhook
on EKS (its documented behaviour, with ``--aws-default-region`` set). When the
pod's ServiceAccount carries ``eks.amazonaws.com/role-arn``:

* a volume ``aws-iam-token``: a projected ServiceAccount token with audience
  ``eks.amazonaws.com/audience`` (default ``sts.amazonaws.com``) and
  ``expirationSeconds`` from ``eks.amazonaws.com/token-expiration`` on the pod,
  else on the ServiceAccount, else 86400 (at least 600, at most 86400);
* in every container and init container not named in the pod's
  ``eks.amazonaws.com/skip-containers``: the volume mounted read-only at
  ``/var/run/secrets/eks.amazonaws.com/serviceaccount``, and the env
  ``AWS_ROLE_ARN`` and ``AWS_WEB_IDENTITY_TOKEN_FILE`` (unless it sets either),
  ``AWS_DEFAULT_REGION`` and ``AWS_REGION`` (unless it sets either),
  ``AWS_STS_REGIONAL_ENDPOINTS=regional`` (unless set, or the ServiceAccount
  says ``eks.amazonaws.com/sts-regional-endpoints: "false"``; devcluster's
  default is the regional endpoint, the webhook's recommended setting).

devcluster adds one thing the webhook does not: the endpoint of its AWS
stand-in, as the SDKs' standard ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_STS`` (unless the container sets either), so that an
unmodified SDK in the pod finds STS and S3 on loopback with no configuration.
A pod whose ServiceAccount has no role gets nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PREFIX = "eks.amazonaws.com/"
ROLE_ARN = PREFIX + "role-arn"
AUDIENCE = PREFIX + "audience"
REGIONAL_STS = PREFIX + "sts-regional-endpoints"
TOKEN_EXPIRATION = PREFIX + "token-expiration"
SKIP_CONTAINERS = PREFIX + "skip-containers"

VOLUME = "aws-iam-token"
MOUNT_PATH = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
TOKEN_FILE = MOUNT_PATH + "/token"
DEFAULT_AUDIENCE = "sts.amazonaws.com"
DEFAULT_EXPIRATION_S = 86400
MIN_EXPIRATION_S = 600


@dataclass(frozen=True, slots=True)
class IrsaSettings:
    """What the webhook is configured with on this cluster."""

    region: str
    """``AWS_DEFAULT_REGION`` and ``AWS_REGION`` (``--aws-default-region``)."""
    endpoint: str = ""
    """devcluster's AWS endpoint (the moto server) for ``AWS_ENDPOINT_URL*``."""


def _expiration(value: object, default: int) -> int:
    """A ``token-expiration`` annotation in seconds, clamped as the webhook does."""
    try:
        seconds = int(str(value))
    except ValueError:
        return default
    return max(MIN_EXPIRATION_S, min(DEFAULT_EXPIRATION_S, seconds))


def _account(
    lister: Any, namespace: str | None, name: str | None
) -> dict[str, Any] | None:
    found: Iterable[dict[str, Any]] = lister("serviceaccounts")
    return next(
        (
            sa
            for sa in found
            if sa["metadata"].get("namespace") == namespace
            and sa["metadata"]["name"] == name
        ),
        None,
    )


EnvGroup = tuple[tuple[str, str], ...]


def _env(role_arn: str, settings: IrsaSettings, regional: bool) -> list[EnvGroup]:
    """The groups of variables the webhook adds; a group set in part is left alone."""
    groups: list[EnvGroup] = [
        (("AWS_ROLE_ARN", role_arn), ("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE)),
        (("AWS_DEFAULT_REGION", settings.region), ("AWS_REGION", settings.region)),
    ]
    if regional:
        groups.append((("AWS_STS_REGIONAL_ENDPOINTS", "regional"),))
    if settings.endpoint:
        groups.append(
            (
                ("AWS_ENDPOINT_URL", settings.endpoint),
                ("AWS_ENDPOINT_URL_STS", settings.endpoint),
            )
        )
    return groups


def _mutate_container(container: dict[str, Any], groups: list[EnvGroup]) -> None:
    env = container.setdefault("env", [])
    present = {str(var.get("name")) for var in env}
    for group in groups:
        if any(name in present for name, _ in group):
            continue
        env.extend({"name": name, "value": value} for name, value in group)
    mounts = container.setdefault("volumeMounts", [])
    if not any(m.get("name") == VOLUME for m in mounts):
        mounts.append({"name": VOLUME, "mountPath": MOUNT_PATH, "readOnly": True})


def mutate_pod(obj: dict[str, Any], lister: Any, settings: IrsaSettings) -> bool:
    """Add the web identity volume, mounts and env to a new pod, in place.

    Args:
        obj: the pod (already defaulted: it names its ServiceAccount).
        lister: returns the stored objects of a plural name.
        settings: the cluster's region and AWS endpoint.

    Returns:
        Whether the pod's ServiceAccount has a role (and the pod was mutated).
    """
    meta, spec = obj["metadata"], obj["spec"]
    account = _account(lister, meta.get("namespace"), spec.get("serviceAccountName"))
    sa_notes = ((account or {}).get("metadata") or {}).get("annotations") or {}
    role_arn = sa_notes.get(ROLE_ARN)
    if not role_arn:
        return False
    pod_notes = meta.get("annotations") or {}
    expiration = _expiration(
        pod_notes.get(TOKEN_EXPIRATION, sa_notes.get(TOKEN_EXPIRATION, "")),
        DEFAULT_EXPIRATION_S,
    )
    regional = str(sa_notes.get(REGIONAL_STS, "true")).lower() != "false"
    groups = _env(str(role_arn), settings, regional)
    skipped = {
        name.strip()
        for name in str(pod_notes.get(SKIP_CONTAINERS, "")).split(",")
        if name.strip()
    }
    for container in list(spec.get("initContainers") or []) + list(
        spec.get("containers") or []
    ):
        if container.get("name") not in skipped:
            _mutate_container(container, groups)
    volumes = spec.setdefault("volumes", [])
    if not any(v.get("name") == VOLUME for v in volumes):
        volumes.insert(
            0,
            {
                "name": VOLUME,
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": sa_notes.get(AUDIENCE, DEFAULT_AUDIENCE),
                                "expirationSeconds": expiration,
                                "path": "token",
                            }
                        }
                    ],
                },
            },
        )
    return True
