"""Which dashboard links go to the gateway with a token (wb_dask_lab.links)."""

from __future__ import annotations

import pytest
from wb_dask_lab.links import Gateway, dashboard_base, plots_url

HUB = "http://hub.example:8000"
GATEWAY = Gateway(
    address="http://proxy-public/services/dask-gateway",
    public_address=f"{HUB}/services/dask-gateway",
)
PLOTS = "http://proxy-public/services/dask-gateway/clusters/{}/individual-plots.json"


@pytest.mark.parametrize(
    ("link", "cluster"),
    [
        pytest.param(f"{HUB}/services/dask-gateway/clusters/abc123/status", "abc123"),
        pytest.param(f"{HUB}/services/dask-gateway/clusters/abc123/", "abc123"),
        pytest.param(f"{HUB}/services/dask-gateway/clusters/abc123", "abc123"),
        pytest.param(
            f"{HUB}/services/dask-gateway/clusters/ns.0f3c/status",
            "ns.0f3c",
            id="kubernetes-name",
        ),
        pytest.param("http://other:8000/services/dask-gateway/clusters/a/", None),
        pytest.param(
            "https://hub.example:8000/services/dask-gateway/clusters/a/",
            None,
            id="scheme",
        ),
        pytest.param(f"{HUB}/services/dask-gateway/api/v1/clusters/", None),
        pytest.param(f"{HUB}/services/dask-gateway/clusters/a/workers", None),
        pytest.param(f"{HUB}/services/dask-gateway/clusters/../api/", None),
        pytest.param(f"{HUB}/services/dask-gateway/clusters/a%2F..%2Fb/", None),
        pytest.param(f"{HUB}/services/dask-gateway/clusters/a/?token=x", None),
        pytest.param(f"{HUB}/user/bob/proxy/8787/status", None, id="local-cluster"),
    ],
)
def test_only_this_gateways_dashboards_are_checked_there(link, cluster):
    expected = PLOTS.format(cluster) if cluster else None
    assert plots_url(link, GATEWAY) == expected


def test_a_relative_public_address_matches_on_the_path():
    gateway = Gateway(
        address="http://proxy-public/services/dask-gateway",
        public_address="/services/dask-gateway",
    )
    link = "http://anything/services/dask-gateway/clusters/abc/status"
    # The token still only goes to the gateway's address.
    assert plots_url(link, gateway) == PLOTS.format("abc")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, None, id="no-gateway"),
        pytest.param(
            {"DASK_GATEWAY__ADDRESS": "gateway://127.0.0.1:8786"}, None, id="not-http"
        ),
        pytest.param(
            {"DASK_GATEWAY__ADDRESS": "http://hub/services/dask-gateway/"},
            Gateway(
                "http://hub/services/dask-gateway", "http://hub/services/dask-gateway"
            ),
            id="public-defaults-to-address",
        ),
        pytest.param(
            {
                "DASK_GATEWAY__ADDRESS": "http://proxy-public/services/dask-gateway",
                "DASK_GATEWAY__PUBLIC_ADDRESS": "/services/dask-gateway",
            },
            Gateway(
                "http://proxy-public/services/dask-gateway", "/services/dask-gateway"
            ),
            id="relative-public",
        ),
    ],
)
def test_the_gateway_comes_from_the_clients_variables(env, expected):
    assert Gateway.from_env(env) == expected


@pytest.mark.parametrize(
    "link",
    [
        f"{HUB}/services/dask-gateway/clusters/a/status",
        f"{HUB}/services/dask-gateway/clusters/a/",
        f"{HUB}/services/dask-gateway/clusters/a",
    ],
)
def test_the_dashboard_base_ends_in_a_slash_without_status(link):
    assert dashboard_base(link) == f"{HUB}/services/dask-gateway/clusters/a/"
