"""ServiceAccount admission over HTTP: a pod naming a ServiceAccount that does
not exist is refused as the real API server refuses it (403, its message); one
that exists, or ``default``, is admitted."""

from __future__ import annotations

from tests.devcluster.cluster_support import Api, pod_manifest

NS = "/api/v1/namespaces/jhub"


async def test_a_pod_of_a_missing_service_account_is_forbidden(api: Api) -> None:
    pod = pod_manifest("needs-sa", ["sleep", "1"], serviceAccountName="team-a")
    status, doc = await api.call("POST", f"{NS}/pods", pod)
    assert status == 403, doc
    assert doc["reason"] == "Forbidden"
    assert doc["message"] == (
        'pods "needs-sa" is forbidden: error looking up service account '
        'jhub/team-a: serviceaccount "team-a" not found'
    )
    status, _ = await api.call("GET", f"{NS}/pods/needs-sa")
    assert status == 404  # nothing stored

    account = {"metadata": {"name": "team-a"}}
    status, _ = await api.call("POST", f"{NS}/serviceaccounts", account)
    assert status == 201
    status, made = await api.call("POST", f"{NS}/pods", pod)
    assert status == 201, made
    assert made["spec"]["serviceAccountName"] == "team-a"


async def test_the_default_service_account_is_admitted(api: Api) -> None:
    status, made = await api.call("POST", f"{NS}/pods", pod_manifest("plain"))
    assert status == 201, made
    assert made["spec"]["serviceAccountName"] == "default"
