"""The hub's IAM policy (``helm-values/iam/hub-policy.json``) names exactly the
AWS calls the hub process can make: the moves of homes that follow capacity
(:mod:`wbspawner.hub.automove` with :mod:`wbspawner.homes.volumes`) and the
managed warmer's ``asg-min`` mode (:mod:`wbspawner.warmer.asgmin`).

The calls are read from the code (every operation name given to the AWS
adapter's ``call``/``paginate`` or to ``Volumes._call``) and turned into IAM
actions with botocore's own service models, so a new call without its grant,
or a grant no call uses any more, fails here.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import botocore.session

from tests.paths import REPO

HUB_AWS_MODULES = (
    "wbspawner/hub/automove.py",
    "wbspawner/homes/volumes.py",
    "wbspawner/warmer/asgmin.py",
)
"""The modules through which the hub process (and the warmer it manages) calls AWS."""

SERVICES = {"ec2": "ec2", "autoscaling": "autoscaling"}
"""boto3 service name → IAM action prefix."""


def operations(path: Path) -> set[str]:
    """Return the snake_case operations a module gives the AWS adapter."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        position = {"call": 1, "paginate": 1, "_call": 0}.get(name)
        first = node.args[0] if node.args else None
        if name == "to_thread" and isinstance(first, ast.Name):
            # asyncio.to_thread(call, client, "operation", ...)
            position = {"call": 2, "paginate": 2}.get(first.id)
        if position is None or len(node.args) <= position:
            continue
        arg = node.args[position]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.add(arg.value)
    return found


def iam_actions(ops: set[str], services: dict[str, str] | None = None) -> set[str]:
    """Return ``service:Operation`` for each snake_case operation."""
    session = botocore.session.get_session()
    by_snake: dict[str, list[str]] = {}
    for service, prefix in (services or SERVICES).items():
        model = session.get_service_model(service)
        for op in model.operation_names:
            snake = botocore.xform_name(op)
            by_snake.setdefault(snake, []).append(f"{prefix}:{op}")
    actions = set()
    for op in ops:
        assert len(by_snake.get(op, [])) == 1, f"{op}: not one AWS operation"
        actions.update(by_snake[op])
    return actions


def granted(path: str = "helm-values/iam/hub-policy.json") -> set[str]:
    policy = json.loads((REPO / path).read_text(encoding="utf-8"))
    return {
        action
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
        for action in statement["Action"]
    }


def test_the_hub_policy_grants_every_call_of_the_hub_and_nothing_else() -> None:
    ops = set().union(*(operations(REPO / m) for m in HUB_AWS_MODULES))
    # the scan finds calls of each form: paginate, Volumes._call, to_thread(call)
    assert {"describe_auto_scaling_groups", "create_snapshot"} <= ops
    assert "update_auto_scaling_group" in ops
    assert granted() == iam_actions(ops)


def test_the_deploy_guide_and_the_values_use_the_policy() -> None:
    guide = (REPO / "docs/deploy-eks.md").read_text(encoding="utf-8")
    assert "helm-values/iam/hub-policy.json" in guide
    values = (REPO / "helm-values/jupyterhub.yaml").read_text(encoding="utf-8")
    assert "helm-values/iam/hub-policy.json" in values


DATA_AWS_MODULES = ("wbspawner/data/observe.py", "wbspawner/data/apply.py")
"""The modules through which ``wbspawner data plan | apply`` calls AWS."""


def test_the_data_admin_policy_grants_every_call_of_data_apply() -> None:
    ops = set().union(*(operations(REPO / m) for m in DATA_AWS_MODULES))
    assert {"create_role", "list_roles", "describe_cluster"} <= ops
    services = {"iam": "iam", "eks": "eks", "sts": "sts"}
    assert granted("helm-values/iam/data-admin-policy.json") == iam_actions(
        ops, services
    )
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "helm-values/iam/data-admin-policy.json" in readme
