"""Fixtures shared by the test tiers, and the check that ends every run.

The plugin :mod:`tests.process_leftovers` fails the run when a process it
started is still alive at its end (and stops it); ``pytester`` runs small test
runs of their own (the check's tests). Fixtures that run services start lazily:

- ``ldap_server``: :class:`devcluster.services.ldap.LdapServer`, a private slapd
  seeded with ``DEMO_USERS`` (alice, bob, gina, carol) and the groups
  jupyter-users, gpu-users, jupyter-admins, for the whole session; stopped by its
  PID at the end. Tests that change the directory use unique names.
- ``postgres``: :class:`devcluster.services.postgres.PostgresServer`, a private
  PostgreSQL (Debian's server) on a free loopback port for the whole session;
  stopped by its PID and its cluster deleted at the end. The hub stacks keep
  their hub and accounting databases there.
- ``stack_databases(name)``: two new, empty databases on ``postgres`` for one
  stack, as :class:`~devcluster.demo.workbench.Workbench`'s keyword arguments
  (``hub_db_url``, ``cost_db_url``); ``name`` (made unique here) says whose.
- ``silent_server``: the base URL (``http://127.0.0.1:PORT``) of a loopback
  server that accepts connections and never answers, to show timeouts; closed
  with its connections after the test.
- ``dask_pod(overrides, worker, namespace=, cluster=, instance=)``: the pod
  manifest the real dask-gateway Kubernetes controller makes for a cluster with
  these configuration overrides (scheduler, or worker when ``worker``).
- ``moto_session``: one moto server on 127.0.0.1 for the whole session, stopped
  by its server thread at the end (also when a test failed). moto keeps its
  state per process, so each folder's ``moto`` fixture decides when to reset it
  (``tests/devcluster`` before every test).
- ``workbench``: the demo's stack (:class:`devcluster.demo.workbench.Workbench`:
  devcluster with node groups, Dask Gateway, JupyterHub + configurable-http-proxy)
  for one test module, on ``ldap_server`` and ``postgres`` (its hub and
  accounting databases from ``stack_databases``), its simulated time 50 times
  faster than the demo's; in a folder of the session's temporary directory named after
  the module. A module says what its stack runs (pools, zones, ...) by
  overriding ``workbench_options``: ``Workbench``'s keyword arguments (none by
  default). Stopped by PID once the module's tests are done.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from devcluster.demo.workbench import Workbench
    from devcluster.services.ldap import LdapServer
    from devcluster.services.moto_server import MotoServer
    from devcluster.services.postgres import PostgresServer

pytest_plugins = ["tests.process_leftovers", "pytester"]


@pytest.fixture(scope="session")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    from devcluster.services.ldap import LdapServer  # no import at collection time

    with LdapServer(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    # no import at collection time
    from devcluster.services.postgres import PostgresServer

    with PostgresServer(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def stack_databases(postgres: PostgresServer) -> Callable[[str], dict[str, str]]:
    numbers = itertools.count(1)

    def make(name: str) -> dict[str, str]:
        # PostgreSQL folds unquoted names to lower case; keep them plain.
        stem = f"{re.sub(r'[^a-z0-9]+', '_', name.lower())[:40]}_{next(numbers)}"
        return {
            "hub_db_url": postgres.create_database(f"{stem}_hub"),
            "cost_db_url": postgres.create_database(f"{stem}_costs"),
        }

    return make


@pytest.fixture(scope="session")
def moto_session() -> Iterator[MotoServer]:
    from devcluster.services.moto_server import (
        MotoServer,  # no import at collection time
    )

    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module")
def workbench(
    request: pytest.FixtureRequest,
    ldap_server: LdapServer,
    stack_databases: Callable[[str], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
    workbench_options: dict[str, Any],
) -> Iterator[Workbench]:
    from devcluster.demo.workbench import Workbench  # no import at collection time
    from devcluster.services.procs import free_port

    module = request.module.__name__.rpartition(".")[2]
    state = tmp_path_factory.mktemp(module)
    # a free port of its own, not the demo's 8000: two stacks on one machine
    # (a test's and the demo, or two test sessions) would race for it
    options = {
        "time_factor": 0.02,
        "public_port": free_port(),
        **stack_databases(module),
        **workbench_options,
    }
    with Workbench(state, ldap=ldap_server, **options) as bench:
        yield bench


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, never answer

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="session")
def dask_pod() -> Callable[..., dict[str, Any]]:
    # Imported here: dask_gateway_server is heavy and only some tests need it.
    from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
    from dask_gateway_server.backends.kubernetes.controller import KubeController
    from dask_gateway_server.utils import FrozenAttrDict

    def make(
        overrides: Mapping[str, Any],
        worker: bool,
        *,
        namespace: str = "dask-gateway",
        cluster: str = "c0ffee",
        instance: str = "dask-gateway",
    ) -> dict[str, Any]:
        config = FrozenAttrDict(KubeClusterConfig(**overrides).to_dict())
        controller = KubeController(
            gateway_instance=instance, api_url="http://api:8000/api"
        )
        return dict(controller.make_pod(namespace, cluster, config, worker))

    return make
