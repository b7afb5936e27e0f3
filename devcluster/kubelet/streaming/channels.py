"""The websocket channel protocol of ``exec``, ``attach`` and ``portforward``.

Kubernetes multiplexes a pod's streams over one websocket: every message starts
with its channel (a byte in the binary protocols ``channel.k8s.io`` and
``v2``–``v5.channel.k8s.io``; an ASCII digit followed by base64 in the
``base64`` ones). For exec and attach, channel 0 is stdin, 1 stdout, 2 stderr, 3
the error channel (the final ``Status`` as JSON from v4 on, plain text before)
and 4 terminal resizes (v3 on); v5 adds channel 255, on which a side says it has
closed one of its channels. For port forwarding, port *i* has a data channel
2*i* and an error channel 2*i*+1. The subprotocol is the first one the client
offers that the server speaks.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255
"""v5: the payload is the channel the sender has closed."""

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
EXEC_PROTOCOLS = (
    V5,
    V4,
    "v4.base64.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
)
PORT_FORWARD_PROTOCOLS = (V4, "v4.base64.channel.k8s.io", "channel.k8s.io")


@dataclass
class Frame:
    """One message: its channel and payload."""

    channel: int
    data: bytes


class Channels:
    """A websocket speaking the channel protocol its handshake chose.

    Args:
        ws: the prepared websocket.
    """

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.protocol = ws.ws_protocol or "channel.k8s.io"
        self.binary = "base64" not in self.protocol
        version = self.protocol.split(".", 1)[0]
        self.version = int(version[1:]) if version.startswith("v") else 1

    @property
    def json_status(self) -> bool:
        """The error channel carries a JSON ``Status`` (v4 and later)."""
        return self.version >= 4

    async def send(self, channel: int, data: bytes) -> bool:
        """Send ``data`` on ``channel``; False once the websocket is closed."""
        if self.ws.closed:
            return False
        try:
            if self.binary:
                await self.ws.send_bytes(bytes([channel]) + data)
            else:
                await self.ws.send_str(str(channel) + base64.b64encode(data).decode())
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def receive(self) -> Frame | None:
        """Return the next message (None when the websocket closes)."""
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY and msg.data:
                return Frame(msg.data[0], msg.data[1:])
            if msg.type == WSMsgType.TEXT and msg.data:
                try:
                    return Frame(int(msg.data[0]), base64.b64decode(msg.data[1:]))
                except ValueError:
                    continue
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return None
            if msg.type == WSMsgType.ERROR:
                return None

    async def send_status(self, status: dict[str, Any]) -> None:
        """Send the final status on the error channel (plain text before v4)."""
        if self.json_status:
            await self.send(ERROR, json.dumps(status).encode())
        elif status.get("status") != "Success":
            await self.send(ERROR, str(status.get("message", "")).encode())


def success() -> dict[str, Any]:
    """The ``Status`` of a command that exited 0."""
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int) -> dict[str, Any]:
    """The ``Status`` of a command that exited ``code`` (not 0).

    kubectl reads the code from the ``ExitCode`` cause and exits with it.
    """
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing "
        f"command, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure(message: str) -> dict[str, Any]:
    """The ``Status`` of a command that could not run."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }
