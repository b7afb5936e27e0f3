"""Read what data access exists: the cluster's roles in IAM, its objects in Kubernetes.

This module owns the reading half of ``wbspawner data``: the account and the
cluster's OIDC issuer (:func:`find_target`), the data roles of a cluster
(found by their name prefix, with their tags, trust and inline policy), and the
ServiceAccounts, PersistentVolumes and claims wbspawner labelled as its own.
AWS is reached through :mod:`wbspawner.adapters.aws`, Kubernetes through
:class:`~wbspawner.adapters.kube.Kube`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from wbspawner.adapters.aws import NotFoundError, call, paginate, tag_dict
from wbspawner.adapters.kube import Kube, api_path
from wbspawner.data import DataAccessError, iam
from wbspawner.data.state import POLICY_NAME, Observed, ObservedRole, Target
from wbspawner.naming import data_role_prefix
from wbspawner.spawn import data_pods as pods

OIDC_HINT = (
    "create it with `eksctl utils associate-iam-oidc-provider --cluster {cluster} "
    "--approve` (or `aws iam create-open-id-connect-provider`), then run the "
    "command again"
)


def find_target(
    clients: dict[str, Any],
    cluster: str,
    namespaces: tuple[str, ...],
    *,
    account: str | None = None,
    issuer: str | None = None,
) -> Target:
    """Return where roles are made: the account and the cluster's OIDC issuer.

    Args:
        clients: boto3 clients ``sts`` and ``eks`` (used when not given below).
        cluster: the EKS cluster name.
        namespaces: the hub's namespace, then the Dask one.
        account: the AWS account (``None``: the caller's, from STS).
        issuer: the OIDC issuer URL (``None``: the cluster's, from EKS).

    Returns:
        The target.

    Raises:
        DataAccessError: the cluster has no OIDC issuer.
        AwsError: a call failed.
    """
    if account is None:
        account = str(call(clients["sts"], "get_caller_identity")["Account"])
    if issuer is None:
        found = call(
            clients["eks"], "describe_cluster", about=f"cluster {cluster}", name=cluster
        )["cluster"]
        issuer = ((found.get("identity") or {}).get("oidc") or {}).get("issuer")
        if not issuer:
            raise DataAccessError(
                f"EKS cluster {cluster} has no OIDC issuer; pass --oidc-issuer"
            )
    return Target(
        cluster=cluster, account=account, issuer=str(issuer), namespaces=namespaces
    )


def check_oidc_provider(iam_client: Any, target: Target) -> str | None:
    """Return a problem when IAM has no OIDC provider for the cluster's issuer.

    Args:
        iam_client: a boto3 IAM client.
        target: the cluster's account and issuer.

    Returns:
        What to do, or ``None`` when the provider exists.
    """
    wanted = iam.provider_arn(target.account, target.issuer, target.partition)
    listed = call(iam_client, "list_open_id_connect_providers")
    arns = {p.get("Arn") for p in listed.get("OpenIDConnectProviderList") or []}
    if wanted in arns:
        return None
    hint = OIDC_HINT.format(cluster=target.cluster)
    return f"IAM has no OIDC provider {wanted} for the cluster's issuer: {hint}"


def observe_roles(iam_client: Any, cluster: str) -> dict[str, ObservedRole]:
    """Return the cluster's data roles by name, with their documents and tags.

    Args:
        iam_client: a boto3 IAM client.
        cluster: the EKS cluster name.

    Returns:
        The roles whose name starts with the cluster's data prefix.
    """
    prefix = data_role_prefix(cluster)
    roles: dict[str, ObservedRole] = {}
    for role in paginate(iam_client, "list_roles", "Roles"):
        name = str(role["RoleName"])
        if not name.startswith(prefix):
            continue
        tags = tag_dict(
            paginate(iam_client, "list_role_tags", "Tags", about=name, RoleName=name)
        )
        try:
            policy = call(
                iam_client,
                "get_role_policy",
                about=name,
                RoleName=name,
                PolicyName=POLICY_NAME,
            )["PolicyDocument"]
        except NotFoundError:
            policy = None
        roles[name] = ObservedRole(
            name=name,
            trust=role.get("AssumeRolePolicyDocument"),
            policy=policy,
            tags=tags,
        )
    return roles


async def observe_kube(kube: Kube, namespaces: tuple[str, ...]) -> Observed:
    """Return wbspawner's data ServiceAccounts, volumes and claims.

    Args:
        kube: the Kubernetes adapter.
        namespaces: the namespaces data access is made in.

    Returns:
        An :class:`Observed` without roles.
    """
    accounts: dict[tuple[str, str], Any] = {}
    claims: dict[tuple[str, str], Any] = {}
    access = f"{pods.DATA_LABEL}=access"
    volume = f"{pods.DATA_LABEL}=volume"
    for ns in namespaces:
        for sa in await kube.list_items(
            api_path("serviceaccounts", ns), label_selector=access
        ):
            accounts[(ns, sa["metadata"]["name"])] = sa
        for pvc in await kube.list_items(
            api_path("persistentvolumeclaims", ns), label_selector=volume
        ):
            claims[(ns, pvc["metadata"]["name"])] = pvc
    pvs = await kube.list_items(api_path("persistentvolumes"), label_selector=volume)
    return Observed(
        service_accounts=accounts,
        volumes={pv["metadata"]["name"]: pv for pv in pvs},
        claims=claims,
    )


async def observe(iam_client: Any, kube: Kube, target: Target) -> Observed:
    """Return everything a plan compares with: roles and Kubernetes objects."""
    roles = await asyncio.to_thread(observe_roles, iam_client, target.cluster)
    found = await observe_kube(kube, target.namespaces)
    return Observed(
        roles=roles,
        service_accounts=found.service_accounts,
        volumes=found.volumes,
        claims=found.claims,
    )
