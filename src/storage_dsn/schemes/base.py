"""What every backend does: the generic fsspec backend and atomic writers.

A :class:`Backend` is the I/O half of a :class:`~storage_dsn.Storage`: it receives keys
that :mod:`storage_dsn.keys` has already validated. The generic :class:`FsspecBackend`
works with any fsspec filesystem; schemes override what their backend does better
(native local I/O, S3 ETags and content types).
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from ..dsn import StorageConfig

__all__ = ["AtomicWriter", "Backend", "BufferedAtomicWriter", "FsspecBackend", "Stat"]

#: How many requests ``read_many``/``write_many`` keep in flight on async backends.
DEFAULT_CONCURRENCY = 64
# Writes up to this size stay in memory and go out as one request (one PUT on S3); a
# larger write spills to a temporary file and uploads from there.
SPOOL_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Stat:
    """What :meth:`Storage.stat` reports about one object."""

    #: Size in bytes.
    size: int
    #: Last modification, seconds since the epoch, or ``None`` when the backend has none.
    mtime: float | None
    #: The backend's entity tag (an S3 ETag, without quotes), or ``None``.
    etag: str | None
    #: The stored content type, else one guessed from the key, else ``None``.
    content_type: str | None


class AtomicWriter(io.RawIOBase):
    """A binary file whose content becomes visible only when it is closed successfully.

    Leaving a ``with`` block by an exception, calling :meth:`discard`, or dropping the
    object unclosed throws the written bytes away; the old object, if any, stays.
    """

    def __init__(self) -> None:
        super().__init__()
        self._done = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._done:
            raise ValueError("write to a closed file")
        view = memoryview(data).cast("B")
        self._write(view)
        return len(view)

    def close(self) -> None:
        """Commit: make the written bytes the object's content."""
        if not self._done:
            self._done = True
            try:
                self._commit()
            except BaseException:
                self._discard()
                raise
        super().close()

    def discard(self) -> None:
        """Throw the written bytes away; the object is left as it was."""
        if not self._done:
            self._done = True
            self._discard()
        super().close()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def __del__(self) -> None:
        # IOBase.__del__ would close(), committing a half-written object: discard instead.
        if not self._done:
            self.discard()

    def _write(self, data: memoryview) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError


class BufferedAtomicWriter(AtomicWriter):
    """Buffers a write and hands it to the backend in one piece on close.

    Small writes stay in memory and are committed with ``commit_bytes``; past
    :data:`SPOOL_BYTES` they spill to a temporary file committed with ``commit_file``.
    Either way the backend sees a whole object or nothing.
    """

    def __init__(
        self,
        commit_bytes: Callable[[bytes], None],
        commit_file: Callable[[str], None],
    ) -> None:
        super().__init__()
        self._commit_bytes = commit_bytes
        self._commit_file = commit_file
        self._buffer: io.BytesIO | None = io.BytesIO()
        self._spill: Any = None

    def _write(self, data: memoryview) -> None:
        if self._buffer is not None:
            self._buffer.write(data)
            if self._buffer.tell() <= SPOOL_BYTES:
                return
            # Closed in _commit or _discard, not here: the file outlives this call.
            self._spill = tempfile.NamedTemporaryFile(prefix="storage-dsn-", delete=False)  # noqa: SIM115
            self._spill.write(self._buffer.getbuffer())
            self._buffer = None
        else:
            self._spill.write(data)

    def _commit(self) -> None:
        if self._buffer is not None:
            self._commit_bytes(self._buffer.getvalue())
            self._buffer = None
            return
        self._spill.close()
        try:
            self._commit_file(self._spill.name)
        finally:
            os.unlink(self._spill.name)
            self._spill = None

    def _discard(self) -> None:
        self._buffer = None
        if self._spill is not None:
            self._spill.close()
            os.unlink(self._spill.name)
            self._spill = None


class Backend:
    """The I/O a storage needs; keys arrive validated and relative to the root."""

    def __init__(self, config: StorageConfig) -> None:
        self.config = config

    @property
    def fs(self) -> AbstractFileSystem:
        """An fsspec filesystem rooted at the storage's root."""
        raise NotImplementedError

    def open_read(self, key: str) -> BinaryIO:
        raise NotImplementedError

    def open_write(self, key: str, *, exclusive: bool = False) -> AtomicWriter:
        """A writer for ``key``; with ``exclusive``, committing it raises
        :class:`FileExistsError` instead of replacing an existing object."""
        raise NotImplementedError

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as f:
            return f.read()

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_write(key) as f:
            f.write(data)

    def save(self, key: str, fileobj: BinaryIO, *, exclusive: bool = False) -> None:
        """Stream ``fileobj`` into ``key`` atomically (backends may upload it directly)."""
        with self.open_write(key, exclusive=exclusive) as out:
            shutil.copyfileobj(fileobj, out, 1024 * 1024)

    def exists(self, key: str) -> bool:
        """Whether ``key`` is a stored object; by default, whether :meth:`stat` finds it."""
        try:
            self.stat(key)
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def stat(self, key: str) -> Stat:
        raise NotImplementedError

    def list(self, prefix: str) -> Iterator[str]:
        raise NotImplementedError

    def scan(self, prefix: str) -> Iterator[tuple[str, Stat]]:
        """``(key, Stat)`` for each key under ``prefix``, sorted, from one listing."""
        return ((key, self.stat(key)) for key in self.list(prefix))

    def read_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return {key: self.read_bytes(key) for key in keys}

    def write_many(self, items: Mapping[str, bytes]) -> None:
        for key, data in items.items():
            self.write_bytes(key, data)

    def local_path(self, key: str) -> Path | None:
        return None


class FsspecBackend(Backend):
    """A backend over any fsspec filesystem, created on first use."""

    #: Extra arguments for ``cat_file`` when a whole object is read.
    _cat_kwargs: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def __init__(self, config: StorageConfig) -> None:
        super().__init__(config)
        self._base: AbstractFileSystem | None = None
        self._rooted: AbstractFileSystem | None = None
        self._root = config.root.rstrip("/")

    @property
    def base(self) -> AbstractFileSystem:
        """The unrooted filesystem; paths are ``root/key``."""
        if self._base is None:
            self._base = self._make_filesystem()
        return self._base

    @property
    def fs(self) -> AbstractFileSystem:
        if self._rooted is None:
            from fsspec.implementations.dirfs import DirFileSystem

            self._rooted = DirFileSystem(path=self._root, fs=self.base)
        return self._rooted

    def _make_filesystem(self) -> AbstractFileSystem:
        import fsspec

        options = self.config.storage_options()
        # fsspec's listings cache keeps a directory's first listing for the life of the
        # process, so an object another process (a sync, a second web worker) wrote later
        # reads as missing. Storages are shared between processes; ask the server.
        # ``option.use_listings_cache=true`` turns it back on.
        options.setdefault("use_listings_cache", False)
        return fsspec.filesystem(self.config.protocol, **options)

    def path(self, key: str) -> str:
        return f"{self._root}/{key}" if self._root else key

    def open_read(self, key: str) -> BinaryIO:
        f: BinaryIO = self.base.open(self.path(key), "rb")
        return f

    def open_write(self, key: str, *, exclusive: bool = False) -> AtomicWriter:
        path = self.path(key)
        return BufferedAtomicWriter(
            commit_bytes=lambda data: self._put_bytes(path, data, exclusive=exclusive),
            commit_file=lambda local: self._put_file(local, path, exclusive=exclusive),
        )

    def read_bytes(self, key: str) -> bytes:
        data: bytes = self.base.cat_file(self.path(key), **self._cat_kwargs)
        return data

    def write_bytes(self, key: str, data: bytes) -> None:
        self._put_bytes(self.path(key), bytes(data))

    # Backends with a conditional write (S3's If-None-Match, a hard link) override these;
    # the generic ``exclusive`` checks first, which a concurrent writer can race.

    def _put_bytes(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        self._refuse_existing(path, exclusive)
        self.base.pipe_file(path, data)

    def _put_file(self, local: str, path: str, *, exclusive: bool = False) -> None:
        self._refuse_existing(path, exclusive)
        self.base.put_file(local, path)

    def _refuse_existing(self, path: str, exclusive: bool) -> None:
        if exclusive and self.base.isfile(path):
            raise FileExistsError(path)

    def delete(self, key: str) -> None:
        self._require_file(key)
        self.base.rm_file(self.path(key))

    def stat(self, key: str) -> Stat:
        try:
            info = self.base.info(self.path(key))
        except FileNotFoundError:
            raise FileNotFoundError(key) from None
        if info.get("type") != "file":
            raise FileNotFoundError(key)
        return self._stat_from_info(key, info)

    def _stat_from_info(self, key: str, info: Mapping[str, Any]) -> Stat:
        etag = info.get("ETag") or info.get("etag")
        content_type = (
            info.get("ContentType") or info.get("content_type") or info.get("contentType")
        )
        return Stat(
            size=int(info.get("size") or 0),
            mtime=_mtime(info),
            etag=str(etag).strip('"') if etag else None,
            content_type=content_type or guess_type(key),
        )

    def list(self, prefix: str) -> Iterator[str]:
        return (key for key, _ in self._find(prefix))

    def scan(self, prefix: str) -> Iterator[tuple[str, Stat]]:
        return ((key, self._stat_from_info(key, info)) for key, info in self._find(prefix))

    def _find(self, prefix: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        directory = prefix.rpartition("/")[0]
        top = self.path(directory) if directory else self._root
        found = self.base.find(top, withdirs=False, detail=True)
        strip = len(self.base._strip_protocol(self._root).rstrip("/")) + 1 if self._root else 0
        items = ((name[strip:], info) for name, info in found.items())
        return iter(sorted((k, i) for k, i in items if k.startswith(prefix) and k))

    def read_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not getattr(self.base, "async_impl", False):
            return super().read_many(keys)
        fs: Any = self.base
        results = self._gather([fs._cat_file(self.path(key), **self._cat_kwargs) for key in keys])
        out: dict[str, bytes] = {}
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, FileNotFoundError):
                    raise FileNotFoundError(key) from None
                raise result
            out[key] = result
        return out

    def write_many(self, items: Mapping[str, bytes]) -> None:
        if not getattr(self.base, "async_impl", False):
            super().write_many(items)
            return
        results = self._gather(
            [self._put_bytes_async(self.path(key), bytes(data)) for key, data in items.items()]
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _put_bytes_async(self, path: str, data: bytes) -> None:
        fs: Any = self.base
        await fs._pipe_file(path, data)

    def _gather(self, coros: Sequence[Any]) -> Sequence[Any]:
        """Run coroutines on the filesystem's loop, at most DEFAULT_CONCURRENCY at once."""
        from fsspec.asyn import sync

        async def run() -> Sequence[Any]:
            limit = asyncio.Semaphore(DEFAULT_CONCURRENCY)

            async def one(coro: Any) -> Any:
                async with limit:
                    return await coro

            return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)

        fs: Any = self.base
        result: Sequence[Any] = sync(fs.loop, run)
        return result

    def _require_file(self, key: str) -> None:
        if not self.base.isfile(self.path(key)):
            raise FileNotFoundError(key)


def file_path(fileobj: object) -> str | None:
    """The path of ``fileobj`` when it is a regular file read from its start, else None.

    Such a file can be uploaded from its path without a copy.
    """
    name = getattr(fileobj, "name", None)
    if not isinstance(name, str) or not os.path.isfile(name):
        return None
    try:
        at_start = fileobj.tell() == 0  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None
    return name if at_start and "r" in getattr(fileobj, "mode", "rb") else None


def guess_type(key: str) -> str | None:
    """The content type for ``key`` by its extension, or ``None``."""
    return mimetypes.guess_type(key, strict=False)[0]


def _mtime(info: Mapping[str, Any]) -> float | None:
    for name in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str) and value:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None
