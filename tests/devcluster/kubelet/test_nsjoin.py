"""A command run in a container joins its mount namespace in every process state.

Kubernetes behaviour followed: ``kubectl exec``, exec probes and exec hooks
run the command *in the container* (CRI ``Exec``/``ExecSync``; runc joins the
container's namespaces), so it reads what the container wrote outside its
volumes (the probes guide's ``touch /tmp/healthy`` / ``cat /tmp/healthy``),
starts in the container's working directory, gets exactly the environment it
was given, and a command that does not exist fails to start (``OCI runtime
exec failed``) rather than running.

The join must not depend on what the kubelet's process has imported: once
``dask_gateway.client`` is imported (a full test session imports it),
``wb_dask_gateway_fix`` starts a thread in every forked child, and a child
that shares its filesystem context with a thread cannot join a mount
namespace (EINVAL). The scenario runs in an interpreter of its own so that
the hook does not outlive this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devcluster.kubelet import nsjoin

REPO = Path(__file__).resolve().parents[3]

SCENARIO = r"""
import asyncio, json, os, subprocess, sys

import dask_gateway.client  # noqa: F401  its at-fork hook starts a thread

from devcluster.kubelet import mountns, process
from devcluster.kubelet.identity import Identity

WORKDIR = "/etc/devcluster-nsjoin-test"


def threads_in_a_forked_child():
    read, write = os.pipe()
    count = lambda: os.write(write, str(len(os.listdir("/proc/self/task"))).encode())
    subprocess.run(["true"], preexec_fn=count, check=True)
    os.close(write)
    return int(os.read(read, 16))


async def run(launch):
    started = await process.start(launch)
    out, err = await started.proc.communicate()
    return started.proc.returncode, out.decode(), err.decode()


async def main(scratch):
    hosts = os.path.join(scratch, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n")
    view = mountns.View(hosts, (), os.path.join(scratch, "rootfs"), WORKDIR)
    code = "open('ready', 'w').write('yes'); import time; time.sleep(60)"
    argv = [sys.executable, "-c", code]
    main = await process.start(process.Launch(argv, dict(os.environ), "/", view=view))
    main.mount_ns = mountns.pin(main.pid)
    env = {"PATH": os.environ["PATH"], "ONLY": "this"}
    joined = mountns.View(hosts, (), "", WORKDIR, join=main.mount_ns)
    result = {"threads": threads_in_a_forked_child()}
    for _ in range(100):
        shell = ["sh", "-c", "cat ready && echo && pwd"]
        result["read"] = await run(process.Launch(shell, env, "/", view=joined))
        if result["read"][0] == 0:
            break
        await asyncio.sleep(0.05)
    result["env"] = await run(process.Launch(["env"], env, "/", view=joined))
    # as the pod's user (runAsUser): its environment is read before the switch
    nobody = Identity(65534, 65534, ())
    who = ["sh", "-c", "id -u && echo $ONLY"]
    result["as_user"] = await run(
        process.Launch(who, env, "/", view=joined, identity=nobody)
    )
    try:
        await process.start(process.Launch(["no-such-command"], env, "/", view=joined))
        result["missing"] = "started"
    except OSError as exc:
        result["missing"] = exc.errno
    result["host_sees"] = os.path.exists(WORKDIR)
    await process.stop(main, 1.0)
    print(json.dumps(result))


asyncio.run(main(sys.argv[1]))
"""


def test_exec_joins_the_container_even_where_forked_children_have_threads(
    tmp_path: Path,
) -> None:
    assert os.geteuid() == 0, "this test needs root: mount namespaces"
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # the condition that broke a join made in the forked child itself
    assert result["threads"] > 1
    assert result["read"] == [0, "yes\n/etc/devcluster-nsjoin-test\n", ""]
    assert sorted(result["env"][1].split()) == [
        "ONLY=this",
        f"PATH={os.environ['PATH']}",
    ]
    assert result["as_user"] == [0, "65534\nthis\n", ""]
    assert result["missing"] == 2  # ENOENT, at start: nothing ran
    assert result["host_sees"] is False


def test_a_start_failure_travels_back_whole() -> None:
    failure = FileNotFoundError(2, "No such file", "x")
    back = nsjoin.decode_failure(nsjoin.encode_failure(failure))
    assert (back.errno, back.strerror, back.filename) == (2, "No such file", "x")
    assert isinstance(back, FileNotFoundError)
