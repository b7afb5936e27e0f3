"""exec, attach and portforward over websockets, as Kubernetes clients speak them.

The channel protocol (k8s.io/apimachinery/pkg/util/httpstream/wsstream; v5 adds
the close signal, KEP-4006), exec's final Status (NonZeroExitCode with the
ExitCode cause, as the kubelet's remotecommand server writes it), and port
forwarding's port-prefixed channels (kubelet portforward/websocket.go). The
Python client used is kubernetes_asyncio's ``WsApiClient`` (v4.channel.k8s.io).
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.stream import WsApiClient

from devcluster.cluster import Cluster
from devcluster.kubelet.streaming import spdy
from tests.devcluster.cluster_support import Api, wait_for
from tests.devcluster.kubelet.kubelet_support import (
    NS,
    PY,
    alive,
    missing,
    phase,
    ready,
    script,
    server,
)

_SLEEP = "import time; time.sleep(60)"


def _ws_url(cluster: Cluster, path: str) -> str:
    return cluster.url.replace("http://", "ws://") + path


async def _frames(ws: aiohttp.ClientWebSocketResponse) -> dict[int, bytes]:
    """Read a session to its end: the bytes of each channel."""
    got: dict[int, bytes] = {}
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.BINARY:
            got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
    return got


async def test_exec_with_kubernetes_asyncio(api: Api, cluster: Cluster):
    """The v4 client gets the command's output, run in the container's env."""
    pod = script(
        "shell", _SLEEP, container={"env": [{"name": "GREETING", "value": "hi"}]}
    )
    await api.call("POST", f"{NS}/pods", pod)
    await ready(api, "shell")
    config = k8s.Configuration(host=cluster.url)
    async with WsApiClient(configuration=config) as ws_api:
        core = k8s.CoreV1Api(api_client=ws_api)
        out = await core.connect_get_namespaced_pod_exec(
            "shell",
            "jhub",
            command=["sh", "-c", "echo $GREETING from $HOSTNAME; echo oops >&2"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
    assert sorted(out.splitlines()) == ["hi from shell", "oops"]


async def test_exec_v5_stdin_close_and_exit_code(
    api: Api, cluster: Cluster, client: aiohttp.ClientSession
):
    """stdin goes in, v5's close signal ends it, and a non-zero exit comes back
    as NonZeroExitCode with the code as the ExitCode cause."""
    await api.call("POST", f"{NS}/pods", script("catty", _SLEEP))
    await ready(api, "catty")
    query = "command=sh&command=-c&command=cat%3B%20exit%203&stdin=true&stdout=true"
    async with client.ws_connect(
        _ws_url(cluster, f"{NS}/pods/catty/exec?{query}"),
        protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"),
    ) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        await ws.send_bytes(b"\x00hello over stdin\n")
        await ws.send_bytes(b"\xff\x00")  # v5: the client closed stdin
        got = await _frames(ws)
    assert got[1] == b"hello over stdin\n"
    status = json.loads(got[3])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_exec_over_the_base64_protocol(
    api: Api, cluster: Cluster, client: aiohttp.ClientSession
):
    """Browsers' variant: text messages, the channel as a digit, then base64."""
    await api.call("POST", f"{NS}/pods", script("b64", _SLEEP))
    await ready(api, "b64")
    async with client.ws_connect(
        _ws_url(cluster, f"{NS}/pods/b64/exec?command=echo&command=hi&stdout=true"),
        protocols=("v4.base64.channel.k8s.io",),
    ) as ws:
        texts = [m.data async for m in ws if m.type == aiohttp.WSMsgType.TEXT]
    decoded = [(t[0], base64.b64decode(t[1:])) for t in texts]
    assert ("1", b"hi\n") in decoded
    assert json.loads(dict(decoded)["3"])["status"] == "Success"


async def test_exec_with_a_terminal_follows_resizes(
    api: Api, cluster: Cluster, client: aiohttp.ClientSession
):
    """With tty=true the command gets a terminal, sized by resize messages."""
    await api.call("POST", f"{NS}/pods", script("termy", _SLEEP))
    await ready(api, "termy")
    code = (
        "import os, sys; sys.stdin.readline(); "
        "print(os.isatty(1), os.get_terminal_size())"
    )
    query = "&".join(
        ["command=" + PY, "command=-c", "command=" + code, "stdin=true", "stdout=true"]
    )
    async with client.ws_connect(
        _ws_url(cluster, f"{NS}/pods/termy/exec?{query}&tty=true"),
        protocols=("v4.channel.k8s.io",),
    ) as ws:
        await ws.send_bytes(b"\x04" + json.dumps({"Width": 123, "Height": 45}).encode())
        await asyncio.sleep(0.2)
        await ws.send_bytes(b"\x00go\r")
        got = await _frames(ws)
    assert "True os.terminal_size(columns=123, lines=45)" in got[1].decode()
    assert json.loads(got[3])["status"] == "Success"


async def test_attach_reaches_the_containers_own_stdin_and_stdout(
    api: Api, cluster: Cluster, client: aiohttp.ClientSession
):
    """attach copies the running container's output, and stdin when its spec
    has stdin: true."""
    echo = (
        "import sys\n"
        "for line in sys.stdin:\n"
        "    print('echo', line.strip(), flush=True)\n"
    )
    await api.call(
        "POST", f"{NS}/pods", script("echoer", echo, container={"stdin": True})
    )
    await phase(api, "echoer", "Running")
    await asyncio.sleep(0.2)
    async with client.ws_connect(
        _ws_url(cluster, f"{NS}/pods/echoer/attach?stdin=true&stdout=true"),
        protocols=("v4.channel.k8s.io",),
    ) as ws:
        await ws.send_bytes(b"\x00ping\n")
        seen = b""
        while b"echo ping" not in seen:
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            if msg.data[0] == 1:
                seen += msg.data[1:]


async def test_port_forward_over_the_channel_protocol(
    api: Api, cluster: Cluster, client: aiohttp.ClientSession
):
    """Each port's data and error channels open with the port, little-endian."""
    await api.call("POST", f"{NS}/pods", server("web"))
    await ready(api, "web")
    async with client.ws_connect(
        _ws_url(cluster, f"{NS}/pods/web/portforward?ports=8888"),
        protocols=("v4.channel.k8s.io",),
    ) as ws:
        first = [await ws.receive_bytes(), await ws.receive_bytes()]
        assert sorted(first) == [b"\x00\xb8\x22", b"\x01\xb8\x22"]  # 8888
        await ws.send_bytes(b"\x00GET / HTTP/1.0\r\n\r\n")
        got = await _frames(ws)
    assert got[0].startswith(b"HTTP/1.0 200") and b"Directory listing" in got[0]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param(
            "exec?command=true&stdout=true", "Upgrade request required", id="no-upgrade"
        ),
        pytest.param(
            "portforward?ports=1", "Upgrade request required", id="pf-no-upgrade"
        ),
    ],
)
async def test_streams_need_a_websocket(api: Api, path: str, message: str):
    await api.call("POST", f"{NS}/pods", script("plain", _SLEEP))
    await ready(api, "plain")
    status, doc = await api.call("GET", f"{NS}/pods/plain/{path}")
    assert status == 400 and doc["message"] == message


async def test_exec_into_a_completed_pod_is_refused(
    api: Api, cluster: Cluster, client: aiohttp.ClientSession
):
    await api.call("POST", f"{NS}/pods", script("done", "pass", restartPolicy="Never"))
    await phase(api, "done", "Succeeded")
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await client.ws_connect(
            _ws_url(cluster, f"{NS}/pods/done/exec?command=true&stdout=true"),
            protocols=("v4.channel.k8s.io",),
        )
    assert raised.value.status == 400


async def test_exec_processes_go_with_their_container(
    api: Api, cluster: Cluster, tmp_path: Path
):
    """A process started by exec lives in the container: deleting the pod ends it."""
    await api.call("POST", f"{NS}/pods", script("host", _SLEEP))
    await ready(api, "host")
    pidfile = tmp_path / "pid"
    daemon = tmp_path / "daemon.py"
    daemon.write_text(
        "import os, sys, time\n"
        "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "time.sleep(300)\n"
    )
    config = k8s.Configuration(host=cluster.url)
    async with WsApiClient(configuration=config) as ws_api:
        core = k8s.CoreV1Api(api_client=ws_api)
        await core.connect_get_namespaced_pod_exec(
            "host",
            "jhub",
            command=["sh", "-c", f"setsid {PY} {daemon} {pidfile} >/dev/null 2>&1 &"],
            stdout=True,
            stderr=True,
        )
    await wait_for(lambda: pidfile.exists() and pidfile.read_text(), 10)
    pid = int(pidfile.read_text())
    assert alive(pid)
    await api.call("DELETE", f"{NS}/pods/host")
    await wait_for(lambda: missing(api, "host"), 10)
    await wait_for(lambda: not alive(pid), 5)


# ------------------------------------------------------------- SPDY framing
def test_spdy_dictionary_is_the_specs():
    """1423 bytes; zlib checks a dictionary by its Adler-32 before inflating."""
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_spdy_frames_and_headers_round_trip():
    ours, theirs = spdy.HeaderCodec(), spdy.HeaderCodec()
    block = theirs.encode({"streamtype": "data", "port": "8888", "requestid": "0"})
    syn = spdy.control(spdy.SYN_STREAM, struct.pack(">IIH", 3, 0, 0) + block)
    parser = spdy.Parser()
    frames = parser.feed(syn[:5]) + parser.feed(
        syn[5:] + spdy.data(3, b"abc", fin=True)
    )
    assert [f.kind for f in frames] == [spdy.SYN_STREAM, 0]
    assert spdy.syn_stream_headers(frames[0], ours) == {
        "streamtype": "data",
        "port": "8888",
        "requestid": "0",
    }
    assert frames[1].stream_id == 3 and frames[1].payload == b"abc"
    assert frames[1].flags & spdy.FLAG_FIN
    reply = spdy.Parser().feed(spdy.syn_reply(3, ours))[0]
    assert reply.kind == spdy.SYN_REPLY and reply.stream_id == 3
    assert theirs.decode(reply.payload[4:]) == {}
    with pytest.raises(zlib.error):
        zlib.decompressobj(zdict=b"wrong").decompress(block)
