"""The dask-gateway client's finalizers never wait: a notebook cannot hang on them.

Issue item: after a refused ``new_cluster()``, the dropped ``Gateway`` object is
freed by the garbage collector; when the collector runs on the client's event
loop thread, ``Gateway.__del__`` waits for that same loop and the notebook
hangs (dask-gateway 2026.3.0; the tests used to call ``gc.collect()`` to dodge
it). ``packages/wb-dask-gateway-fix`` replaces the finalizers; the notebook
images and the test environment install it the same way (a ``.pth`` file).

The scripts below run in a fresh interpreter of this environment, bounded by a
timeout, so a hang fails the test instead of blocking it. None of them calls
``gc.collect()``: they make the collector run on the loop thread by enabling it
there, which is the moment the issue describes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.paths import REPO

FIX = "packages/wb-dask-gateway-fix"

# A Gateway reachable only through a reference cycle, as a refused new_cluster()
# leaves its own; automatic collection is off until the loop thread turns it on.
COLLECTED_ON_THE_LOOP = """
import gc
from dask_gateway import Gateway

gw = Gateway("http://127.0.0.1:9")
dropped = Gateway("http://127.0.0.1:9", loop=gw.loop)
cycle = [dropped]
cycle.append(cycle)
gc.disable()
del dropped, cycle


async def allocate_on_the_loop():
    gc.enable()  # the next allocations collect the cycle, on this thread
    return len([[] for _ in range(10_000)])


print("collected on the loop:", gw.sync(allocate_on_the_loop), flush=True)
gw.close()
print("closed", flush=True)
"""

CLOSED_THEN_COLLECTED = """
import gc
from dask_gateway import Gateway

gw = Gateway("http://127.0.0.1:9")
gw.close()
del gw
print("done", flush=True)
"""


def run(script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"the client hung ({timeout:g}s): {err.stdout!r} {err.stderr!r}")


def test_the_installed_client_has_the_fix() -> None:
    import dask_gateway.client as client

    assert getattr(client.Gateway, "_wb_dask_gateway_fix", False)
    assert getattr(client.GatewayCluster, "_wb_dask_gateway_fix", False)


def test_a_gateway_collected_on_its_loop_thread_does_not_hang_the_client() -> None:
    done = run(COLLECTED_ON_THE_LOOP)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "collected on the loop: 10000" in done.stdout
    assert "closed" in done.stdout


def test_a_closed_gateway_is_collected_silently() -> None:
    """The old finalizer closed it again and Python printed the error."""
    done = run(CLOSED_THEN_COLLECTED)
    assert done.returncode == 0 and "done" in done.stdout, done.stderr
    assert "Exception ignored" not in done.stderr, done.stderr


def test_the_fix_is_on_without_being_imported() -> None:
    """The .pth file loads it at start-up; dask_gateway stays unimported."""
    done = run(
        "import sys; print('wb_dask_gateway_fix' in sys.modules, "
        "'dask_gateway' in sys.modules)"
    )
    assert done.stdout.split() == ["True", "False"], done.stderr


@pytest.mark.parametrize("image", ["singleuser", "singleuser-gpu"])
def test_the_notebook_images_install_the_fix(image: str) -> None:
    """The Dask worker image is FROM the single-user image and inherits it."""
    text = (REPO / "images" / image / "Dockerfile").read_text(encoding="utf-8")
    assert f"COPY {FIX} /tmp/wb-dask-gateway-fix" in text
    install = text[text.index("dask-gateway==${DASK_GATEWAY_VERSION}") :]
    assert "/tmp/wb-dask-gateway-fix \\" in install.split("\n\n")[0]
