"""Running code in a kernel of a user's server, as JupyterLab does, for the hub tests.

- ``start_kernel(user)``: starts a ``python3`` kernel in the user's running server
  (the server's REST API through the proxy, with the user's token) and returns
  its id.
- ``execute(user, kernel_id, code, reply_timeout=None)``: sends ``code`` as an
  ``execute_request`` over the kernel's websocket; with ``reply_timeout`` it
  waits (bounded) for the ``execute_reply``, fails unless its status is
  ``ok`` and returns what the code printed (its ``stream`` output), otherwise
  it leaves the code running after a second (and returns ``""``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp

from tests.integration.hub_harness import HubUser


def kernels_url(user: HubUser) -> str:
    return f"{user.url}/user/{user.name}/api/kernels"


def start_kernel(user: HubUser) -> str:
    headers = {"Authorization": f"token {user.token()}"}
    made = user.http.post(
        kernels_url(user), json={"name": "python3"}, headers=headers, timeout=60
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _request(user: HubUser, code: str, msg_id: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": user.name,
            "session": uuid.uuid4().hex,
            "date": datetime.now(UTC).isoformat(),
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


def execute(
    user: HubUser, kernel_id: str, code: str, reply_timeout: float | None = None
) -> str:
    token = user.token()
    ws_url = kernels_url(user).replace("http", "ws", 1)
    ws_url += f"/{kernel_id}/channels?token={token}"
    msg_id = uuid.uuid4().hex
    printed: list[str] = []

    async def run() -> None:
        headers = {"Authorization": f"token {token}"}
        async with aiohttp.ClientSession(trust_env=False) as http:
            async with http.ws_connect(ws_url, headers=headers) as socket:
                await socket.send_str(json.dumps(_request(user, code, msg_id)))
                if reply_timeout is None:
                    await asyncio.sleep(1.0)
                    return
                async with asyncio.timeout(reply_timeout):
                    replied = idle = False
                    while not (replied and idle):  # the output ends with idle
                        msg = await socket.receive_json()
                        if (msg.get("parent_header") or {}).get("msg_id") != msg_id:
                            continue
                        kind, content = msg.get("msg_type"), msg["content"]
                        if kind == "stream":
                            printed.append(content["text"])
                        if kind == "status":
                            idle = content["execution_state"] == "idle"
                        if kind == "execute_reply":
                            replied = True
                            status = content["status"]
                            assert status == "ok", (content, "".join(printed))

    asyncio.run(run())
    return "".join(printed)
