"""Does a role's trust policy let a web identity assume it? (pure)

What STS decides for ``AssumeRoleWithWebIdentity`` from the role's trust
policy, for the policies IRSA uses: a statement applies when its ``Action``
(or ``NotAction``) matches ``sts:AssumeRoleWithWebIdentity`` (``*`` wildcards)
and its ``Principal`` is ``{"Federated": <the OIDC provider's ARN>}`` (or
``"*"``); its ``Condition`` is met when every operator's every key is. Keys are
the token's claims as IAM names them, ``<provider URL without https://>:sub``,
``:aud``, ``:amr``; operators ``StringEquals``, ``StringLike``,
``StringNotEquals``, ``StringNotLike`` (each ``...IfExists`` too) and
``Null``. An operator this module does not know makes the statement fail to
match (fail closed). An explicit ``Deny`` wins over any ``Allow``.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

ACTION = "sts:AssumeRoleWithWebIdentity"


def _values(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _like(pattern: str, value: str) -> bool:
    # IAM's wildcards: * any run, ? one character; nothing else is special
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern
    )
    return re.fullmatch(regex, value, re.DOTALL) is not None


_OPERATORS = {
    "StringEquals": lambda want, have: have in want,
    "StringLike": lambda want, have: any(_like(w, have) for w in want),
    "StringNotEquals": lambda want, have: have not in want,
    "StringNotLike": lambda want, have: not any(_like(w, have) for w in want),
}


def _condition_met(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, keys in condition.items():
        if not isinstance(keys, Mapping):
            return False
        base = operator.removesuffix("IfExists")
        for key, wanted in keys.items():
            have = context.get(key)
            if base == "Null":
                if (have is None) != (str(wanted).lower() == "true"):
                    return False
                continue
            test = _OPERATORS.get(base)
            if test is None:
                return False  # an operator we cannot judge: fail closed
            if have is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            if not test(_values(wanted), have):
                return False
    return True


def _matches_action(statement: Mapping[str, Any]) -> bool:
    if "NotAction" in statement:
        return not any(
            fnmatch.fnmatchcase(ACTION.lower(), a.lower())
            for a in _values(statement["NotAction"])
        )
    return any(
        fnmatch.fnmatchcase(ACTION.lower(), a.lower())
        for a in _values(statement.get("Action", []))
    )


def _matches_principal(statement: Mapping[str, Any], provider_arn: str) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    return provider_arn in _values(principal.get("Federated", []))


def _statements(document: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    found = document.get("Statement", [])
    return [found] if isinstance(found, Mapping) else list(found)


def allows(
    document: str | Mapping[str, Any], provider_arn: str, context: Mapping[str, str]
) -> bool:
    """Tell whether a trust policy lets the provider's identity assume the role.

    Args:
        document: the role's ``AssumeRolePolicyDocument`` (JSON text or parsed).
        provider_arn: the IAM OIDC provider's ARN.
        context: the condition keys and their values (``<provider>:sub``, ...).
    """
    parsed = json.loads(document) if isinstance(document, str) else document
    allowed = False
    for statement in _statements(parsed):
        if not (
            _matches_action(statement) and _matches_principal(statement, provider_arn)
        ):
            continue
        if not _condition_met(statement.get("Condition") or {}, context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed
