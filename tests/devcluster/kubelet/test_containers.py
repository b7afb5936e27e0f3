"""The kubelet runs the whole pod spec: every container, init containers, hooks,
subPath mounts, and no process of a pod outlives it.

Each test names the Kubernetes behaviour it follows (kubernetes.io/docs/concepts/
workloads/pods/...).
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from pathlib import Path

from devcluster.cluster import Cluster
from tests.devcluster.cluster_support import Api, pod_manifest, wait_for
from tests.devcluster.kubelet.kubelet_support import (
    NS,
    PY,
    alive,
    container,
    events,
    get_pod,
    missing,
    phase,
    ready,
    reasons,
    script,
    status_of,
    watch_pod,
)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
        return resp.read().decode()


def _serve(name: str, port: int) -> dict:
    code = (
        "import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        f"        self.send_response(200); self.end_headers(); "
        f"self.wfile.write(b'{name}')\n"
        f"http.server.HTTPServer(('0.0.0.0', {port}), H).serve_forever()\n"
    )
    return container(name, code, ports=[{"containerPort": port}])


async def test_every_container_runs_on_the_pod_ip(api: Api, cluster: Cluster):
    """All containers of a pod run and share its IP, each on its own port
    (pods/#using-pods)."""
    pod = pod_manifest("duo")
    pod["spec"]["containers"] = [_serve("web", 8080), _serve("side", 9090)]
    assert (await api.call("POST", f"{NS}/pods", pod))[0] == 201
    running = await ready(api, "duo")
    ip = running["status"]["podIP"]
    assert await asyncio.to_thread(_get, f"http://{ip}:8080/") == "web"
    assert await asyncio.to_thread(_get, f"http://{ip}:9090/") == "side"
    names = [c["name"] for c in running["status"]["containerStatuses"]]
    assert names == ["web", "side"]
    assert all(
        c["state"].get("running") for c in running["status"]["containerStatuses"]
    )
    assert cluster.kubelet is not None and len(cluster.kubelet.pids()) == 2
    started = [e for e in await events(api, "duo") if e["reason"] == "Started"]
    assert {e["involvedObject"]["fieldPath"] for e in started} == {
        "spec.containers{web}",
        "spec.containers{side}",
    }


async def test_init_containers_run_in_order_before_the_app(api: Api):
    """Init containers run one at a time, each to completion, before any app
    container starts (init-containers/#understanding-init-containers)."""
    append = "import sys; open(sys.argv[1], 'a').write('{}\\n')"
    mount = {"volumeMounts": [{"name": "work", "mountPath": "/shared"}]}
    pod = pod_manifest(
        "ordered",
        [PY, "-c", "import sys; print(open(sys.argv[1]).read(), end='')"],
        container={**mount, "args": ["/shared/order"]},
        restartPolicy="Never",
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    slow = "import time; time.sleep(0.3); " + append.format(1)
    pod["spec"]["initContainers"] = [
        container("first", slow, args=["/shared/order"], **mount),
        container("second", append.format(2), args=["/shared/order"], **mount),
    ]
    await api.call("POST", f"{NS}/pods", pod)
    done = await phase(api, "ordered", "Succeeded")
    _, log = await api.call("GET", f"{NS}/pods/ordered/log")
    assert log == "1\n2\n"
    for name in ("first", "second"):
        state = status_of(done, name, init=True)["state"]["terminated"]
        assert state["exitCode"] == 0 and state["reason"] == "Completed"
    conditions = {c["type"]: c["status"] for c in done["status"]["conditions"]}
    assert conditions["Initialized"] == "True"
    starts = [
        e["involvedObject"]["fieldPath"]
        for e in await events(api, "ordered")
        if e["reason"] == "Started"
    ]
    assert starts == [
        "spec.initContainers{first}",
        "spec.initContainers{second}",
        "spec.containers{main}",
    ]


async def test_failed_init_container_fails_a_never_restarting_pod(api: Api):
    """With restartPolicy Never a failed init container fails the pod and the
    app containers never start (init-containers/#detailed-behavior)."""
    pod = script("doomed", "print('never')", restartPolicy="Never")
    pod["spec"]["initContainers"] = [container("setup", "raise SystemExit(3)")]
    await api.call("POST", f"{NS}/pods", pod)
    failed = await phase(api, "doomed", "Failed")
    init = status_of(failed, "setup", init=True)["state"]["terminated"]
    assert init["exitCode"] == 3
    assert "waiting" in status_of(failed, "main")["state"]
    conditions = {c["type"]: c for c in failed["status"]["conditions"]}
    assert conditions["Initialized"]["status"] == "False"
    assert "setup" in conditions["Initialized"]["message"]


async def test_failed_init_container_is_retried_with_back_off(api: Api):
    """With restartPolicy Always a failed init container is restarted (with its
    restart count) until it succeeds (init-containers/#detailed-behavior)."""
    flaky = (
        "import os, sys\n"
        "if not os.path.exists(sys.argv[1]):\n"
        "    open(sys.argv[1], 'w').close(); sys.exit(1)\n"
    )
    mount = {
        "volumeMounts": [{"name": "work", "mountPath": "/shared"}],
        "args": ["/shared/tried"],
    }
    pod = script(
        "flaky",
        "import time; time.sleep(60)",
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    pod["spec"]["initContainers"] = [container("setup", flaky, **mount)]
    await api.call("POST", f"{NS}/pods", pod)
    running = await phase(api, "flaky", "Running")
    init = status_of(running, "setup", init=True)
    assert init["restartCount"] == 1 and init["state"]["terminated"]["exitCode"] == 0
    assert init["lastState"]["terminated"]["exitCode"] == 1
    assert "BackOff" in await reasons(api, "flaky")


async def test_hooks_run_around_the_container(api: Api, tmp_path: Path):
    """postStart runs right after the container starts, preStop before it gets
    SIGTERM on deletion (container-lifecycle-hooks/#container-hooks)."""
    trail = tmp_path / "trail"
    note = f"open({str(trail)!r}, 'a').write('{{}}\\n')"
    main = (
        "import signal, sys, time\n"
        f"def term(*_): {note.format('sigterm')}; sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "time.sleep(60)\n"
    )
    pod = script("hooked", main)
    pod["spec"]["containers"][0]["lifecycle"] = {
        "postStart": {"exec": {"command": [PY, "-c", note.format("postStart")]}},
        "preStop": {"exec": {"command": [PY, "-c", note.format("preStop")]}},
    }
    # The hook has the grace period to run in; the default 30 s is 0.3 s at this
    # time factor, less than a Python start takes on a busy machine.
    pod["spec"]["terminationGracePeriodSeconds"] = 1000
    await api.call("POST", f"{NS}/pods", pod)
    await ready(api, "hooked")
    assert trail.read_text() == "postStart\n"
    await api.call("DELETE", f"{NS}/pods/hooked")
    await wait_for(lambda: missing(api, "hooked"), 10)
    assert trail.read_text() == "postStart\npreStop\nsigterm\n"


async def test_failed_post_start_hook_kills_the_container(api: Api):
    """A failing postStart hook kills the container, which restarts by policy
    (container-lifecycle-hooks/#hook-handler-execution)."""
    pod = script("badhook", "import time; time.sleep(60)")
    pod["spec"]["containers"][0]["lifecycle"] = {
        "postStart": {"exec": {"command": [PY, "-c", "raise SystemExit(2)"]}}
    }
    await api.call("POST", f"{NS}/pods", pod)

    async def restarted() -> bool:
        found = (await get_pod(api, "badhook"))["status"]["containerStatuses"][0]
        return found["restartCount"] >= 1

    await wait_for(restarted, 15)
    assert "FailedPostStartHook" in await reasons(api, "badhook")


async def test_subpath_mounts_one_configmap_key_as_a_file(api: Api):
    """A subPath mount of a ConfigMap key is that file at the mount path
    (volumes/#using-subpath)."""
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"app.conf": "greeting = hello\n", "other": "x"},
    }
    await api.call("POST", f"{NS}/configmaps", cm)
    pod = pod_manifest(
        "subpathed",
        [PY, "-c", "import sys; print(open(sys.argv[1]).read(), end='')"],
        container={
            "args": ["/etc/app/app.conf"],
            "volumeMounts": [
                {"name": "cfg", "mountPath": "/etc/app/app.conf", "subPath": "app.conf"}
            ],
        },
        restartPolicy="Never",
        volumes=[{"name": "cfg", "configMap": {"name": "settings"}}],
    )
    await api.call("POST", f"{NS}/pods", pod)
    await phase(api, "subpathed", "Succeeded")
    _, log = await api.call("GET", f"{NS}/pods/subpathed/log")
    assert log == "greeting = hello\n"


async def test_pod_waits_for_the_secret_its_volume_names(api: Api):
    """A pod whose Secret volume names a Secret that does not exist yet stays
    ContainerCreating with a FailedMount event, and starts with the Secret's
    keys once it is created (configure-pod-container/configure-pod-configmap:
    "the Pod won't start until the ConfigMap is created"; Secrets alike). An
    ``optional`` missing source does not hold the pod."""
    read = "import os, sys; print(sorted(os.listdir(sys.argv[1])))"
    pod = pod_manifest(
        "certs",
        [PY, "-c", read, "/etc/certs"],
        container={"volumeMounts": [{"name": "certs", "mountPath": "/etc/certs"}]},
        restartPolicy="Never",
        volumes=[
            {"name": "certs", "secret": {"secretName": "later"}},
            {"name": "extra", "configMap": {"name": "absent", "optional": True}},
        ],
    )
    await api.call("POST", f"{NS}/pods", pod)

    async def failed_mount() -> list[dict] | None:
        found = [e for e in await events(api, "certs") if e["reason"] == "FailedMount"]
        return found or None

    (event,) = await wait_for(failed_mount, 10)
    assert event["message"] == (
        'MountVolume.SetUp failed for volume "certs" : secret "later" not found'
    )
    await asyncio.sleep(0.3)
    assert (await get_pod(api, "certs"))["status"]["phase"] == "Pending"
    secret = {"metadata": {"name": "later"}, "data": {"ssl.crt": "eA=="}}
    assert (await api.call("POST", f"{NS}/secrets", secret))[0] == 201
    await phase(api, "certs", "Succeeded")
    _, log = await api.call("GET", f"{NS}/pods/certs/log")
    assert log == "['ssl.crt']\n"


_DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(sys.argv[1], 'w').write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
print('started', flush=True)
time.sleep(300)
"""


async def test_no_process_of_a_deleted_pod_survives(
    api: Api, cluster: Cluster, tmp_path: Path
):
    """Deleting a pod stops every process it started, even one that left its
    session, as the end of the container's PID namespace does
    (pods/pod-lifecycle/#pod-termination)."""
    assert cluster.kubelet is not None
    pidfile = tmp_path / "daemon.pid"
    pod = pod_manifest("escaper", [PY, "-c", _DAEMON, str(pidfile)])
    await api.call("POST", f"{NS}/pods", pod)
    await wait_for(lambda: pidfile.exists() and pidfile.read_text(), 15)
    daemon = int(pidfile.read_text())
    main = (await get_pod(api, "escaper"))["status"]["containerStatuses"][0]
    assert main["state"].get("running") and alive(daemon)
    assert os.getsid(daemon) != os.getsid(cluster.kubelet.pids()[0])
    await api.call("DELETE", f"{NS}/pods/escaper")
    await wait_for(lambda: missing(api, "escaper"), 10)
    await wait_for(lambda: not alive(daemon), 5)
    root = cluster.kubelet.runtime.cgroups.root
    assert root is not None, "devcluster runs as root here: pods get cgroups"
    assert not [p for p in root.iterdir() if p.is_dir()], "the pod's cgroup is left"


async def test_main_process_exit_takes_the_rest_of_the_container(
    api: Api, tmp_path: Path
):
    """When a container's main process exits, the rest of its processes go too."""
    pidfile = tmp_path / "child.pid"
    code = (
        "import subprocess, sys\n"
        "sleep = [sys.executable, '-c', 'import time; time.sleep(300)']\n"
        "child = subprocess.Popen(sleep, start_new_session=True)\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
    )
    await api.call("POST", f"{NS}/pods", script("parent", code, restartPolicy="Never"))
    await phase(api, "parent", "Succeeded")
    await wait_for(lambda: not alive(int(pidfile.read_text())), 5)


async def test_deleted_pod_stays_until_its_processes_are_gone(
    api: Api, cluster: Cluster
):
    """A deleted pod keeps its deletionTimestamp, then reports a terminal phase,
    and goes only when the kubelet has stopped its containers (grace period
    over: SIGKILL) — pods/pod-lifecycle/#pod-termination; the terminal phase on
    deletion is Kubernetes 1.27+ behaviour (pod-lifecycle/#pod-phase)."""
    assert cluster.kubelet is not None
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    await api.call("POST", f"{NS}/pods", script("stubborn", stubborn))

    async def up() -> bool:
        return (await api.call("GET", f"{NS}/pods/stubborn/log"))[1] == "up\n"

    await wait_for(up, 10)
    pid = cluster.kubelet.pids()[0]
    rv = (await get_pod(api, "stubborn"))["metadata"]["resourceVersion"]
    watch = await watch_pod(api, "stubborn", rv, 3)
    began = time.monotonic()
    await api.call("DELETE", f"{NS}/pods/stubborn?gracePeriodSeconds=50")  # 0.5 s
    await wait_for(lambda: missing(api, "stubborn"), 10)
    assert time.monotonic() - began >= 0.5 and not alive(pid)
    seen = [e for e in await watch if e["type"] in ("MODIFIED", "DELETED")]
    assert seen[-1]["type"] == "DELETED"
    terminal = [e for e in seen if e["object"]["status"].get("phase") == "Failed"]
    assert terminal and terminal[0]["object"]["metadata"]["deletionTimestamp"]
    state = terminal[-1]["object"]["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["exitCode"] == 137


async def test_sim_pod_goes_after_a_status_sync_not_at_once(api: Api):
    """A pod with nothing to stop is not removed in the same breath as its
    DELETE: watchers see it terminating first (pod-lifecycle/#pod-termination)."""
    pod = script("simmed", "pass")
    pod["metadata"]["annotations"] = {"devcluster.io/kubelet-mode": "sim"}
    await api.call("POST", f"{NS}/pods", pod)
    rv = (await ready(api, "simmed"))["metadata"]["resourceVersion"]
    watch = await watch_pod(api, "simmed", rv, 1)
    status, deleted = await api.call("DELETE", f"{NS}/pods/simmed")
    assert status == 200 and deleted["metadata"]["deletionTimestamp"]
    seen = await watch
    kinds = [e["type"] for e in seen]
    assert kinds[-1] == "DELETED" and kinds.count("MODIFIED") >= 2
    terminating = [e["object"] for e in seen if e["type"] == "MODIFIED"]
    assert all(p["metadata"]["deletionTimestamp"] for p in terminating)
    assert terminating[-1]["status"]["phase"] == "Succeeded"


async def test_exec_runs_in_the_containers_working_directory(
    api: Api, cluster: Cluster
):
    """A command run in the container (kubectl exec) starts in the container's
    working directory, as its main process did."""
    code = "import os, time; print(os.getcwd(), flush=True); time.sleep(60)"
    await api.call("POST", f"{NS}/pods", script("worker", code))
    await ready(api, "worker")
    assert cluster.kubelet is not None
    worker = cluster.kubelet.worker("jhub", "worker")
    assert worker is not None
    (runner,) = worker.apps

    async def main_cwd() -> str | None:
        _, log = await api.call("GET", f"{NS}/pods/worker/log")
        return str(log).strip() or None

    expected = await wait_for(main_cwd, 10)
    status, out = await runner.exec_command(
        [PY, "-c", "import os; print(os.getcwd())"], 10
    )
    assert (status, out.decode().strip()) == (0, expected)
