"""The kubelet's streaming server: ``exec``, ``attach`` and ``portforward`` of a pod.

``serve`` answers ``pods/{name}/exec``, ``attach`` and ``portforward``: it
checks the request as the apiserver and the kubelet do (a websocket upgrade is
required; the container must exist and be running, in a pod that has not
completed; at least one stream for exec and attach), with errors as ``Status``
bodies before the upgrade, then hands the websocket to a session:

- ``channels``: the websocket channel protocol (v1 to v5, binary or base64);
- ``sessions``: exec and attach sessions;
- ``spdy`` and ``portforward``: port forwarding over the channel protocol and
  over SPDY tunnelled in a websocket (kubectl's way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web

from devcluster.errors import ApiError, bad_request
from devcluster.kubelet.streaming import portforward, sessions
from devcluster.kubelet.streaming.channels import (
    EXEC_PROTOCOLS,
    PORT_FORWARD_PROTOCOLS,
    Channels,
)

if TYPE_CHECKING:
    from devcluster.kubelet.runner import ContainerRunner
    from devcluster.kubelet.worker import PodWorker

__all__ = ["serve"]


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _container(pod: dict[str, Any], query: Any) -> str:
    name = pod["metadata"]["name"]
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("containers") or []]
    init = [c["name"] for c in spec.get("initContainers") or []]
    container = query.get("container") or ""
    if not container:
        if len(names) != 1:
            raise bad_request(
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(names)}]"
            )
        return str(names[0])
    if container not in names + init:
        raise bad_request(f"container {container} is not valid for pod {name}")
    return str(container)


def _running(
    pod: dict[str, Any], worker: PodWorker | None, container: str, verb: str
) -> ContainerRunner:
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        preposition = "into" if verb == "exec" else "to"
        raise bad_request(
            f"cannot {verb} {preposition} a container in a completed pod; current "
            f"phase is {phase}"
        )
    runner = worker.runner(container) if worker is not None else None
    if runner is None or not runner.running:
        raise bad_request(
            f'unable to upgrade connection: container not found ("{container}")'
        )
    if (
        worker is not None
        and worker.sandbox is not None
        and worker.sandbox.mode == "sim"
    ):
        raise bad_request(
            f"pod {pod['metadata']['name']} runs in devcluster's sim mode: there is "
            f"no process to {verb}"
        )
    return runner


async def serve(
    request: web.Request,
    subresource: str,
    pod: dict[str, Any],
    worker: PodWorker | None,
) -> web.StreamResponse:
    """Serve a streaming subresource of ``pod`` (run by ``worker``, if any).

    Raises:
        ApiError: 400 before the upgrade (no websocket, bad parameters, the
            container is not running), as a ``Status``.
    """
    if not _is_upgrade(request):
        raise ApiError(400, "BadRequest", "Upgrade request required")
    query = request.query
    if subresource == "portforward":
        return await _port_forward(request, pod, worker)
    container = _container(pod, query)
    flags = [
        query.get(k) in ("true", "True", "1") for k in ("stdin", "stdout", "stderr")
    ]
    if not any(flags):
        raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
    runner = _running(pod, worker, container, subresource)
    command = query.getall("command", [])
    if subresource == "exec" and not command:
        raise bad_request("you must specify at least one command for the container")
    ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, autoping=True, max_msg_size=0)
    await ws.prepare(request)
    chans = Channels(ws)
    if subresource == "exec":
        await sessions.run_exec(chans, runner, command, query)
    else:
        await sessions.run_attach(chans, runner, query)
    return ws


async def _port_forward(
    request: web.Request, pod: dict[str, Any], worker: PodWorker | None
) -> web.StreamResponse:
    phase = (pod.get("status") or {}).get("phase")
    ip = (pod.get("status") or {}).get("podIP") or ""
    if phase != "Running" or not ip or worker is None:
        raise bad_request(
            f"unable to upgrade connection: pod is not running - status: {phase}"
        )
    offered = [
        p.strip()
        for p in request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "").split(",")
    ]
    uid = pod["metadata"]["uid"]
    if portforward.SPDY_TUNNEL in offered:
        ws = web.WebSocketResponse(
            protocols=(portforward.SPDY_TUNNEL,), autoping=True, max_msg_size=0
        )
        await ws.prepare(request)
        await portforward.SpdySession(ws, ip, uid).run()
        return ws
    try:
        ports = portforward.ports_of(request.query.getall("ports", []))
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    if not ports:
        raise bad_request("at least 1 port is required")
    ws = web.WebSocketResponse(
        protocols=PORT_FORWARD_PROTOCOLS, autoping=True, max_msg_size=0
    )
    await ws.prepare(request)
    await portforward.run_channels(Channels(ws), ip, uid, ports)
    return ws
