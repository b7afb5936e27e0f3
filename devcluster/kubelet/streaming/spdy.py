"""The part of SPDY/3.1 that ``kubectl port-forward`` speaks, as the server side.

kubectl (1.30 and later) forwards ports over a websocket with the subprotocol
``SPDY/3.1+portforward.k8s.io``: the websocket's binary messages carry a SPDY
byte stream (KEP-4006). For every connection it opens two streams with
``SYN_STREAM`` (headers ``streamType: error|data``, ``port``, ``requestID``),
waits for each ``SYN_REPLY``, then sends the connection's bytes as ``DATA``
frames; ``PING`` frames are echoed. Header blocks are zlib-compressed with the
SPDY/3 dictionary, one compression context per direction for the whole
connection (draft-mbelshe-httpbis-spdy-00, sections 2.2, 2.6 and 2.6.10.1).
This module is the framing and the header codec; ``portforward`` runs the
sessions.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY = 1, 2, 3, 4, 6, 7
FLAG_FIN = 0x01
VERSION = 3
RST_PROTOCOL_ERROR = 1

_WORDS = (
    (
        "options head post put delete trace accept accept-charset accept-encoding "
        "accept-language accept-ranges age allow authorization cache-control "
        "connection content-base content-encoding content-language content-length "
        "content-location "
        "content-md5 content-range content-type date etag expect expires from host "
        "if-match if-modified-since if-none-match if-range if-unmodified-since "
        "last-modified location max-forwards pragma proxy-authenticate "
        "proxy-authorization range referer retry-after server te trailer "
        "transfer-encoding upgrade user-agent vary via warning www-authenticate method "
        "get status"
    ).split()
    + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie"]
    + [
        "keep-alive",
        "origin",
    ]
)
_STATUS_CODES = (
    "100 101 201 202 205 206 300 302 303 304 305 306 307 402 405 406 407 408 409 "
    "410 411 412 413 414 415 416 417 502 504 505"
).split()
_PHRASES = (
    "203 Non-Authoritative Information",
    "204 No Content",
    "301 Moved Permanently",
    "400 Bad Request",
    "401 Unauthorized",
    "403 Forbidden",
    "404 Not Found",
    "500 Internal Server Error",
    "501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,",
    "application/xhtml+xml,text/plain,text/javascript,public",
    "private",
    "max-age=",
    "gzip,deflate,sdch",
    "charset=utf-8",
    "charset=iso-8859-1,utf-,*,enq=0.",
)
DICTIONARY = (
    b"".join(len(word).to_bytes(4, "big") + word.encode() for word in _WORDS)
    + ("".join(_STATUS_CODES) + "".join(_PHRASES)).encode()
)
"""The SPDY/3 header compression dictionary (the spec's section 2.6.10.1): its
length-prefixed header names and values, then common values run together."""


class SpdyError(Exception):
    """The peer sent something that is not SPDY/3."""


@dataclass
class Frame:
    """A parsed frame: control (``kind`` > 0) or data (``kind`` 0)."""

    kind: int
    flags: int
    payload: bytes
    stream_id: int = 0


@dataclass
class Parser:
    """Splits a SPDY byte stream into frames as bytes arrive."""

    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return the frames now complete."""
        self.buffer += data
        frames: list[Frame] = []
        while len(self.buffer) >= 8:
            first, second = struct.unpack(">II", self.buffer[:8])
            length = second & 0xFFFFFF
            if len(self.buffer) < 8 + length:
                break
            payload = bytes(self.buffer[8 : 8 + length])
            del self.buffer[: 8 + length]
            flags = second >> 24
            if first & 0x80000000:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise SpdyError(f"SPDY version {version} is not 3")
                stream = (
                    struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                    if (
                        kind in (SYN_STREAM, SYN_REPLY, RST_STREAM)
                        and len(payload) >= 4
                    )
                    else 0
                )
                frames.append(Frame(kind, flags, payload, stream))
            else:
                frames.append(Frame(0, flags, payload, first & 0x7FFFFFFF))
        return frames


class HeaderCodec:
    """The two compression contexts of one connection (ours and the peer's)."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zdict=DICTIONARY)

    def decode(self, block: bytes) -> dict[str, str]:
        """Decompress and parse a header block (names lower-case)."""
        raw = self._inflate.decompress(block)
        try:
            (count,) = struct.unpack(">I", raw[:4])
            pos, headers = 4, {}
            for _ in range(count):
                (n,) = struct.unpack(">I", raw[pos : pos + 4])
                name = raw[pos + 4 : pos + 4 + n].decode()
                pos += 4 + n
                (n,) = struct.unpack(">I", raw[pos : pos + 4])
                # several values are NUL-separated; the first is enough here
                value = raw[pos + 4 : pos + 4 + n].split(b"\0")[0].decode()
                pos += 4 + n
                headers[name.lower()] = value
        except (struct.error, UnicodeDecodeError) as exc:
            raise SpdyError(f"bad header block: {exc}") from exc
        return headers

    def encode(self, headers: dict[str, str]) -> bytes:
        """Build and compress a header block."""
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            raw += struct.pack(">I", len(name)) + name.encode()
            raw += struct.pack(">I", len(value)) + value.encode()
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def control(kind: int, payload: bytes, flags: int = 0) -> bytes:
    """Encode a control frame."""
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + (
        payload
    )


def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
    """Encode a data frame."""
    flags = FLAG_FIN if fin else 0
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + (
        payload
    )


def syn_stream_headers(frame: Frame, codec: HeaderCodec) -> dict[str, str]:
    """The headers of a ``SYN_STREAM`` (stream id, associated id, priority, block)."""
    return codec.decode(frame.payload[10:])


def syn_reply(stream_id: int, codec: HeaderCodec) -> bytes:
    """A ``SYN_REPLY`` with no headers."""
    return control(SYN_REPLY, struct.pack(">I", stream_id) + codec.encode({}))


def rst_stream(stream_id: int, status: int = RST_PROTOCOL_ERROR) -> bytes:
    """A ``RST_STREAM``."""
    return control(RST_STREAM, struct.pack(">II", stream_id, status))
