"""``pods/{name}/portforward``: connections into a pod, over a websocket.

Two ways in, as a real cluster offers them:

- the channel protocol (``v4.channel.k8s.io``, the Python clients'): the
  ``ports`` query parameters name the ports; port *i* gets data channel 2*i*
  and error channel 2*i*+1, each opened by a message carrying the port as two
  little-endian bytes, and one connection to the pod per port;
- SPDY tunnelled in the websocket (``SPDY/3.1+portforward.k8s.io``, kubectl's):
  every pair of streams (``error`` and ``data`` with the same ``requestID``) is
  one connection to the pod's ``port``.

A connection goes to the pod IP. When either side finishes, the other gets a
second to finish too (as containerd's port forwarding does); a connection that
cannot be made is reported on the error stream or channel, worded like the
kubelet's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from devcluster.kubelet.streaming import spdy
from devcluster.kubelet.streaming.channels import Channels

log = logging.getLogger(__name__)

SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
_CHUNK = 32 * 1024
_HALF_CLOSE_S = 1.0


def ports_of(values: list[str]) -> list[int]:
    """Parse the ``ports`` query parameters (repeated, or comma-separated).

    Raises:
        ValueError: a port is not a number from 1 to 65535.
    """
    found: list[int] = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                port = int(part)
                if not 0 < port < 65536:
                    raise ValueError(f"invalid port {port}")
                found.append(port)
    return found


def _refused(port: int, ip: str, uid: str, exc: OSError) -> bytes:
    return (
        f"error forwarding port {port} to pod {uid}, uid : failed to execute "
        "portforward "
        f"in network namespace: failed to connect to {ip}:{port} inside namespace: "
        f"{exc.strerror or exc}"
    ).encode()


async def _connect(
    ip: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(ip, port), 10.0)


async def _copy_out(
    reader: asyncio.StreamReader, send: Callable[[bytes], Awaitable[bool]]
) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while chunk := await reader.read(_CHUNK):
            if not await send(chunk):
                return


# ------------------------------------------------------------ channel protocol
async def run_channels(chans: Channels, ip: str, uid: str, ports: list[int]) -> None:
    """One connection per port, over the channel protocol, until either side ends."""
    writers: dict[int, asyncio.StreamWriter] = {}
    copies: list[asyncio.Future[None]] = []
    for index, port in enumerate(ports):
        prefix = port.to_bytes(2, "little")
        await chans.send(2 * index, prefix)
        await chans.send(2 * index + 1, prefix)
        try:
            reader, writer = await _connect(ip, port)
        except (OSError, TimeoutError) as exc:
            await chans.send(2 * index + 1, _refused(port, ip, uid, OSError(str(exc))))
            continue
        writers[2 * index] = writer

        async def send(chunk: bytes, channel: int = 2 * index) -> bool:
            return await chans.send(channel, chunk)

        copies.append(asyncio.ensure_future(_copy_out(reader, send)))

    async def client_in() -> None:
        while (frame := await chans.receive()) is not None:
            writer = writers.get(frame.channel)
            if writer is not None and frame.data:
                writer.write(frame.data)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

    incoming = asyncio.ensure_future(client_in())
    try:
        if copies:
            await asyncio.wait({incoming, *copies}, return_when=asyncio.FIRST_COMPLETED)
            if not incoming.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*copies), _HALF_CLOSE_S)
    finally:
        incoming.cancel()
        for task in copies:
            task.cancel()
        for writer in writers.values():
            writer.close()
        await chans.ws.close()


# -------------------------------------------------------------- SPDY tunnel
@dataclass
class _Pair:
    port: str = ""
    error: int = 0
    data: int = 0
    inbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


class SpdySession:
    """kubectl's port forwarding: SPDY streams over a websocket's binary messages.

    Args:
        ws: the prepared websocket (subprotocol ``SPDY/3.1+portforward.k8s.io``).
        ip: the pod IP.
        uid: the pod's uid (for error messages).
    """

    def __init__(self, ws: web.WebSocketResponse, ip: str, uid: str) -> None:
        self.ws = ws
        self.ip = ip
        self.uid = uid
        self.codec = spdy.HeaderCodec()
        self.parser = spdy.Parser()
        self.pairs: dict[str, _Pair] = {}
        self.inboxes: dict[int, asyncio.Queue[bytes | None]] = {}
        self.tasks: set[asyncio.Future[None]] = set()
        self._lock = asyncio.Lock()

    async def _send(self, frame: bytes) -> bool:
        # one writer at a time: header compression state is shared, in order
        async with self._lock:
            if self.ws.closed:
                return False
            try:
                await self.ws.send_bytes(frame)
            except (ConnectionError, RuntimeError):
                return False
        return True

    async def run(self) -> None:
        """Serve the session until the client closes the websocket."""
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                try:
                    frames = self.parser.feed(msg.data)
                except spdy.SpdyError as exc:
                    log.warning("port-forward: %s; closing", exc)
                    break
                for frame in frames:
                    if not await self._on_frame(frame):
                        return
        finally:
            for inbox in self.inboxes.values():
                inbox.put_nowait(None)
            if self.tasks:
                await asyncio.wait(self.tasks, timeout=_HALF_CLOSE_S + 1.0)
            for task in self.tasks:
                task.cancel()
            await self.ws.close()

    async def _on_frame(self, frame: spdy.Frame) -> bool:
        if frame.kind == 0:
            inbox = self.inboxes.get(frame.stream_id)
            if inbox is not None:
                if frame.payload:
                    inbox.put_nowait(frame.payload)
                if frame.flags & spdy.FLAG_FIN:
                    inbox.put_nowait(None)
                    del self.inboxes[frame.stream_id]
        elif frame.kind == spdy.SYN_STREAM:
            # every header block is decoded, even one refused: the context is shared
            headers = spdy.syn_stream_headers(frame, self.codec)
            await self._on_stream(frame.stream_id, headers)
        elif frame.kind == spdy.RST_STREAM:
            inbox = self.inboxes.pop(frame.stream_id, None)
            if inbox is not None:
                inbox.put_nowait(None)
        elif frame.kind == spdy.PING:
            await self._send(spdy.control(spdy.PING, frame.payload))
        elif frame.kind == spdy.GOAWAY:
            return False
        return True

    async def _on_stream(self, stream_id: int, headers: dict[str, str]) -> None:
        kind = headers.get("streamtype", "")
        if kind not in ("error", "data"):
            await self._send(spdy.rst_stream(stream_id))
            return
        # kubectl waits for this reply before it opens the pair's other stream
        await self._send(spdy.syn_reply(stream_id, self.codec))
        key = headers.get("requestid") or f"port:{headers.get('port', '')}"
        pair = self.pairs.setdefault(key, _Pair())
        pair.port = headers.get("port", pair.port)
        if kind == "error":
            pair.error = stream_id
        else:
            pair.data = stream_id
            self.inboxes[stream_id] = pair.inbox
        if pair.error and pair.data:
            del self.pairs[key]
            task = asyncio.ensure_future(self._forward(pair))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _forward(self, pair: _Pair) -> None:
        """One forwarded connection: the pod's port both ways, then both streams end."""
        try:
            port = int(pair.port)
            reader, writer = await _connect(self.ip, port)
        except (ValueError, OSError, TimeoutError) as exc:
            message = (
                f"invalid port {pair.port!r}".encode()
                if isinstance(exc, ValueError)
                else _refused(int(pair.port), self.ip, self.uid, OSError(str(exc)))
            )
            await self._send(spdy.data(pair.error, message))
            await self._finish(pair)
            return

        async def send(chunk: bytes) -> bool:
            return await self._send(spdy.data(pair.data, chunk))

        async def client_in() -> None:
            while (chunk := await pair.inbox.get()) is not None:
                writer.write(chunk)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()  # the pod sees the end of the request

        out = asyncio.ensure_future(_copy_out(reader, send))
        into = asyncio.ensure_future(client_in())
        try:
            done, _ = await asyncio.wait(
                {out, into}, return_when=asyncio.FIRST_COMPLETED
            )
            rest = into if out in done else out
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(rest), _HALF_CLOSE_S)
        finally:
            out.cancel()
            into.cancel()
            writer.close()
            await self._finish(pair)

    async def _finish(self, pair: _Pair) -> None:
        # an empty FIN, not a reset: kubectl reads the error stream to its end
        await self._send(spdy.data(pair.data, b"", fin=True))
        await self._send(spdy.data(pair.error, b"", fin=True))
