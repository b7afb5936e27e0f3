"""Fixtures every unit test may use: the shipped data and builders of the model.

- ``repo``: the repository's root folder.
- ``catalog``: the packaged instance catalogue, read once per session.
- ``profiles``: the shipped ``profiles/`` loaded with that catalogue, once per
  session (the model is frozen, so tests share it; change a copy with
  ``dataclasses.replace``).
- ``shipped_pool``: a test with this argument runs once per pool name of the
  shipped profiles (ids are the names).
- ``shipped_size``: likewise once per size slug of the shipped profiles, in
  their order.
- ``make_pool(**fields)``: a :class:`~wbspawner.model.Pool` with these fields.
  Every field nobody gives comes from ``Pool`` itself: its default, or for a
  field without one the value of the shipped ``mem64`` pool. Given catalogue
  ``instance_types``, the facts of those types (full-node request, vCPUs,
  memory, GPUs, cheapest price) follow them, unless given too; ``sizing``
  (a :class:`~wbspawner.model.SizingSettings`) sizes the request.
- ``make_profiles(*pools, **fields)``: :class:`~wbspawner.model.Profiles` holding
  just these pools and no sizes; other fields as for ``make_pool`` (required
  ones from the shipped profiles). The catalogue carries the measured
  capacities of ``sizing``, as the loader applies them.
- ``make_settings(**fields)``: the hub's :class:`~wbspawner.hub.settings.Settings`
  with a STARTTLS LDAP server; ``ldap=`` takes ``LdapSettings`` field changes.
- ``cluster_spec(profiles, catalog, name="dev", **changes)``: an EKS cluster's
  facts for the pools of ``profiles``: one subnet per zone, an AMI for every SSM
  parameter they need; ``changes`` replace fields.
- ``gateway_env``: the environment of a local Dask Gateway (``WBSPAWNER_MODE=
  local``, two profiles paths, its URL, proxy address and API token, the hub's
  API URL), as ``GatewaySettings.from_env`` reads it.
- ``run_cli(*argv, environ=None)``: runs ``wbspawner`` in this process and
  returns ``(exit code, stdout, stderr)``.
- ``aws_env``: dummy AWS credentials and no shared config files, so boto3
  reads nothing from the home folder.
- ``moto``: ``aws_env`` with moto's in-process AWS (``mock_aws``) for the test.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from moto import mock_aws

from tests.paths import REPO
from wbspawner.catalog import sizing
from wbspawner.catalog.instances import load_catalog
from wbspawner.cli import main as cli
from wbspawner.hub.settings import LdapSettings, Settings
from wbspawner.model import Catalog, Pool, Profiles, SizingSettings
from wbspawner.pools.desired import ClusterSpec
from wbspawner.pools.nodes import required_ami_parameters
from wbspawner.profiles.loader import load_profiles
from wbspawner.profiles.parsers import with_measured

BASE_POOL = "mem64"
"""The shipped pool whose values fill the fields of ``make_pool`` without default."""


def _required(cls: type[Any], base: object) -> dict[str, Any]:
    """Values of ``base`` for the fields of ``cls`` that have no default."""
    return {
        f.name: getattr(base, f.name)
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@functools.cache
def _shipped() -> tuple[Catalog, Profiles]:
    """The packaged catalogue and the shipped profiles, read once per session."""
    catalog = load_catalog()
    return catalog, load_profiles([REPO / "profiles"], catalog)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "shipped_pool" in metafunc.fixturenames:
        names = sorted(_shipped()[1].pools)
        metafunc.parametrize("shipped_pool", names, ids=names)
    if "shipped_size" in metafunc.fixturenames:
        slugs = [s.slug for s in _shipped()[1].sizes]
        metafunc.parametrize("shipped_size", slugs, ids=slugs)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return _shipped()[0]


@pytest.fixture(scope="session")
def profiles() -> Profiles:
    return _shipped()[1]


@pytest.fixture(scope="session")
def make_pool(profiles: Profiles, catalog: Catalog) -> Callable[..., Pool]:
    base = _required(Pool, profiles.pools[BASE_POOL])

    def make(*, sizing: SizingSettings | None = None, **fields: Any) -> Pool:
        names = fields.get("instance_types", ())
        derived: dict[str, Any] = {}
        if names and all(n in catalog.types for n in names):
            types = [catalog.types[n] for n in names]
            derived = {
                "request": _full_node_request(types, sizing),
                "gpu_count": types[0].gpu_count,
                "gpu_kind": types[0].gpu_kind,
                "vcpu": types[0].vcpu,
                "memory_mib": types[0].memory_mib,
                "price_per_hour": min(t.price_per_hour for t in types),
            }
        return Pool(**{**base, **derived, **fields})

    return make


def _full_node_request(types: list[Any], settings: SizingSettings | None) -> Any:
    return sizing.full_node_request(types, settings or SizingSettings())


@pytest.fixture(scope="session")
def make_profiles(profiles: Profiles, catalog: Catalog) -> Callable[..., Profiles]:
    base = _required(Profiles, profiles)

    def make(*pools: Pool, **fields: Any) -> Profiles:
        settings: SizingSettings = fields.get("sizing", SizingSettings())
        values: dict[str, Any] = {
            **base,
            "pools": MappingProxyType({p.name: p for p in pools}),
            "sizes": (),
            # As the loader does: the measured capacities apply to the catalogue
            # once, when the profiles are made.
            "catalog": with_measured(catalog, settings.measured_capacity_mib),
        }
        return Profiles(**{**values, **fields})

    return make


def _ami_for(parameter: str) -> str:
    variant = parameter.split("/")[8]
    return f"ami-{variant}-{parameter.split('/')[5].replace('.', '')}"


def _cluster_spec(
    profiles: Profiles, catalog: Catalog, name: str = "dev", **changes: Any
) -> ClusterSpec:
    zones = sorted({z for p in profiles.pools.values() for z in p.zones})
    k8s = changes.pop("k8s_version", "1.33")
    amis = {p: _ami_for(p) for p in required_ami_parameters(profiles, catalog, k8s)}
    spec = ClusterSpec(
        name=name,
        region="us-east-1",
        k8s_version=k8s,
        endpoint="https://api.example.eks.amazonaws.com",
        certificate_authority="Q0E=",
        subnets={z: (f"subnet-{z[-1]}",) for z in zones},
        security_group_ids=("sg-cluster",),
        instance_profile="node-profile",
        amis=amis,
    )
    return dataclasses.replace(spec, **changes)


@pytest.fixture(scope="session")
def cluster_spec() -> Callable[..., ClusterSpec]:
    return _cluster_spec


@pytest.fixture(scope="session")
def make_settings() -> Callable[..., Settings]:
    def make(*, ldap: Mapping[str, Any] | None = None, **fields: Any) -> Settings:
        server = LdapSettings(
            **{
                "server": "ldap.example.org",
                "port": 389,
                "tls": "starttls",
                "ca_file": None,
                "bind_dn_templates": ("uid={username},ou=people,dc=example,dc=org",),
                "group_dn_template": "cn={group},ou=groups,dc=example,dc=org",
                **(ldap or {}),
            }
        )
        return Settings(ldap=server, **fields)

    return make


@pytest.fixture(scope="session")
def gateway_env() -> Mapping[str, str]:
    return MappingProxyType(
        {
            "WBSPAWNER_MODE": "local",
            "WBSPAWNER_PROFILES": "/p1:/p2",
            "WBSPAWNER_DASK_GATEWAY_URL": "http://127.0.0.1:9000",
            "WBSPAWNER_DASK_GATEWAY_FRONT_URL": "http://127.0.0.1:9002",
            "WBSPAWNER_DASK_GATEWAY_PROXY_ADDRESS": "gateway://127.0.0.1:9001",
            "WBSPAWNER_DASK_GATEWAY_API_TOKEN": "s3cret-token",
            "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
        }
    )


@pytest.fixture(scope="session")
def run_cli() -> Callable[..., tuple[int, str, str]]:
    def run(
        *argv: str, environ: Mapping[str, str] | None = None
    ) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), environ=dict(environ or {}), stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    with mock_aws():
        yield
