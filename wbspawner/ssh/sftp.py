"""SFTP on a user's home, through their server's Jupyter contents API.

This module owns :class:`ContentsSFTPServer`, an asyncssh SFTP server whose
file system is the user's Jupyter server as JupyterLab's file browser sees it:
``/`` is the server's root (the user's home, on whichever node and volume it
is), every request is a contents API call through the hub's proxy
(:class:`~wbspawner.adapters.jupyterserver.JupyterServer`). So ``sftp``,
``scp`` (which speaks SFTP) and file managers work wherever the home is
attached, and what is copied shows in JupyterLab at once.

Limits, said in the user guide: a file is written from start to end (the
contents API has no random writes; an upload is sent in chunks of
:data:`~wbspawner.adapters.jupyterserver.CHUNK_BYTES`); a file is read whole
when it is opened; owners, permissions and times cannot be set.
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncssh

from wbspawner.adapters.jupyterserver import CHUNK_BYTES, JupyterServer, ServerError

_Change = Callable[[JupyterServer, str], Awaitable[None]]
_DIR_MODE = stat.S_IFDIR | 0o755
_FILE_MODE = stat.S_IFREG | 0o644


def virtual_path(path: bytes) -> str:
    """Return a client's path as a normalised absolute path of the home."""
    text = path.decode("utf-8", "surrogateescape") or "."
    return posixpath.normpath(posixpath.join("/", text))


def attrs_of(model: dict[str, object]) -> asyncssh.SFTPAttrs:
    """Return SFTP attributes of a contents model."""
    directory = model.get("type") == "directory"
    size = model.get("size")
    mtime = _seconds(model.get("last_modified"))
    return asyncssh.SFTPAttrs(
        type=asyncssh.FILEXFER_TYPE_DIRECTORY
        if directory
        else asyncssh.FILEXFER_TYPE_REGULAR,
        size=int(size) if isinstance(size, int) else 0,
        permissions=_DIR_MODE if directory else _FILE_MODE,
        atime=mtime,
        mtime=mtime,
    )


def _seconds(stamp: object) -> int | None:
    if not isinstance(stamp, str):
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _sftp_error(err: ServerError, path: str) -> asyncssh.SFTPError:
    if err.status == 404:
        return asyncssh.SFTPNoSuchFile(f"{path}: no such file or directory")
    if err.status == 403:
        return asyncssh.SFTPPermissionDenied(f"{path}: {err}")
    return asyncssh.SFTPFailure(f"{path}: {err}")


@dataclass
class _Download:
    path: str
    data: bytes


@dataclass
class _Upload:
    path: str
    written: int = 0
    chunks: int = 0
    buffer: bytearray = field(default_factory=bytearray)


class ContentsSFTPServer(asyncssh.SFTPServer):
    """An SFTP server over one user's Jupyter server.

    Args:
        chan: the SSH channel (asyncssh's).
        resolve: returns the user's running server (starting it if need be) at
            the first request; it raises :class:`ServerError` when there is
            none, and every request then fails with its message.
    """

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        resolve: Callable[[], Awaitable[JupyterServer]],
    ) -> None:
        super().__init__(chan)
        self._resolve = resolve
        self._server: JupyterServer | None = None

    async def _api(self) -> JupyterServer:
        if self._server is None:
            try:
                self._server = await self._resolve()
            except ServerError as err:
                raise asyncssh.SFTPFailure(str(err)) from None
        return self._server

    async def realpath(self, path: bytes) -> bytes:
        """Return the normalised absolute form of a path."""
        return virtual_path(path).encode()

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        """Return a file's or directory's attributes."""
        where = virtual_path(path)
        try:
            return attrs_of(await (await self._api()).model(where))
        except ServerError as err:
            raise _sftp_error(err, where) from None

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        """Return attributes; the contents API follows links, as :meth:`stat`."""
        return await self.stat(path)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        """Yield ``.``, ``..`` and a directory's entries with their attributes."""
        where = virtual_path(path)
        try:
            entries = await (await self._api()).listing(where)
        except ServerError as err:
            raise _sftp_error(err, where) from None
        directory = asyncssh.SFTPAttrs(
            type=asyncssh.FILEXFER_TYPE_DIRECTORY, permissions=_DIR_MODE
        )
        for name in (b".", b".."):
            yield asyncssh.SFTPName(name, attrs=directory)
        for entry in entries:
            entry_name = str(entry.get("name", ""))
            yield asyncssh.SFTPName(entry_name.encode(), attrs=attrs_of(entry))

    async def open(
        self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs
    ) -> _Download | _Upload:
        """Open a file: read whole at once, or written from its start."""
        where = virtual_path(path)
        if pflags & asyncssh.FXF_WRITE:
            if pflags & asyncssh.FXF_APPEND:
                raise asyncssh.SFTPOpUnsupported("appending is not supported")
            return _Upload(where)
        try:
            return _Download(where, await (await self._api()).read(where))
        except ServerError as err:
            raise _sftp_error(err, where) from None

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        """Return bytes of a file opened for reading."""
        if not isinstance(file_obj, _Download):
            raise asyncssh.SFTPPermissionDenied("file not open for reading")
        return file_obj.data[offset : offset + size]

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        """Append bytes to a file being written (only in order)."""
        if not isinstance(file_obj, _Upload):
            raise asyncssh.SFTPPermissionDenied("file not open for writing")
        if offset != file_obj.written:
            raise asyncssh.SFTPOpUnsupported("files are written from start to end")
        file_obj.buffer += data
        file_obj.written += len(data)
        if len(file_obj.buffer) >= CHUNK_BYTES:
            await self._flush(file_obj, last=False)
        return len(data)

    async def _flush(self, upload: _Upload, *, last: bool) -> None:
        data = bytes(upload.buffer)
        upload.buffer.clear()
        try:
            if last and upload.chunks == 0:
                await (await self._api()).save(upload.path, data)
                return
            upload.chunks += 1
            chunk = -1 if last else upload.chunks
            await (await self._api()).save(upload.path, data, chunk=chunk)
        except ServerError as err:
            raise _sftp_error(err, upload.path) from None

    async def close(self, file_obj: object) -> None:
        """Close a file; one being written is saved."""
        if isinstance(file_obj, _Upload):
            await self._flush(file_obj, last=True)

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        """Return the attributes of an open file."""
        size = (
            len(file_obj.data)
            if isinstance(file_obj, _Download)
            else getattr(file_obj, "written", 0)
        )
        return asyncssh.SFTPAttrs(
            type=asyncssh.FILEXFER_TYPE_REGULAR, size=size, permissions=_FILE_MODE
        )

    async def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """Accept and ignore: the contents API sets no owners, modes or times."""

    async def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        """Accept and ignore, as :meth:`setstat`."""

    async def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """Create a directory."""
        await self._change(path, lambda api, p: api.make_directory(p))

    async def remove(self, path: bytes) -> None:
        """Delete a file."""
        await self._change(path, lambda api, p: api.delete(p))

    async def rmdir(self, path: bytes) -> None:
        """Delete an empty directory."""
        await self._change(path, lambda api, p: api.delete(p))

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        """Rename or move a file or directory."""
        new = virtual_path(newpath)
        await self._change(oldpath, lambda api, p: api.rename(p, new))

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        """Rename, as :meth:`rename`."""
        await self.rename(oldpath, newpath)

    async def _change(self, path: bytes, call: _Change) -> None:
        where = virtual_path(path)
        try:
            await call(await self._api(), where)
        except ServerError as err:
            raise _sftp_error(err, where) from None
