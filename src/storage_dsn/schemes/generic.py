"""The backend of any fsspec filesystem: the default for schemes with no backend of their own.

:class:`FsspecBackend` opens ``fsspec.filesystem(config.protocol, **config.options)`` on
first use and maps the backend contract (:mod:`storage_dsn.backend`) onto it: whole-object
reads and writes, listings with sizes and times, and concurrent ``read_many`` and
``write_many`` on async filesystems. Schemes subclass it for what their filesystem does
better or differently (S3 content types and conditional writes, SFTP renames).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from ..backend import (
    DEFAULT_CONCURRENCY,
    AtomicWriter,
    Backend,
    BufferedAtomicWriter,
    Stat,
    guess_type,
    is_listable,
    is_temp,
    temp_name,
)

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from ..dsn import StorageConfig

__all__ = ["FsspecBackend", "RenamingBackend"]


class FsspecBackend(Backend):
    """A backend over any fsspec filesystem, created on first use."""

    def __init__(self, config: StorageConfig, *, environ: Mapping[str, str] = os.environ) -> None:
        super().__init__(config, environ=environ)
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

    def storage_options(self) -> dict[str, Any]:
        """The keyword arguments of the filesystem class (subclasses add what they know)."""
        return self.config.storage_options()

    def _make_filesystem(self) -> AbstractFileSystem:
        import fsspec

        options = self.storage_options()
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
        data: bytes = self.base.cat_file(self.path(key))
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

    #: The filesystem may be used from several threads at once though it is not async
    #: (it locks what it shares); a blocking one on one connection (FTP) may not.
    thread_safe: bool = False

    def concurrency(self) -> int | None:
        if self.thread_safe or getattr(self.base, "async_impl", False):
            return None
        return 1

    def server_copy(self, source: Backend) -> Callable[[str], None] | None:
        # One filesystem class with the same options is one service and account: its
        # copy runs inside the service (Azure Copy Blob, GCS rewrite, S3 CopyObject).
        if type(source) is not type(self) or not self.base.async_impl:
            return None
        if source.storage_options() != self.storage_options():
            return None
        other: FsspecBackend = source
        return lambda key: self._copy_inside(other.path(key), self.path(key))

    def _copy_inside(self, source_path: str, path: str) -> None:
        self.base.cp_file(source_path, path)

    def delete(self, key: str) -> None:
        # stat, not isfile: fsspec's isfile answers False for any error, and a failed
        # request would read as "no such key".
        self.stat(key)
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
        return iter(sorted((k, i) for k, i in items if k.startswith(prefix) and is_listable(k)))

    def read_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not getattr(self.base, "async_impl", False):
            return super().read_many(keys)
        fs: Any = self.base
        results = self._gather([fs._cat_file(self.path(key)) for key in keys])
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
        import asyncio

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


class RenamingBackend(FsspecBackend):
    """Publishes each write by uploading to a temporary name beside the key and renaming
    it over the key: for filesystems whose uploads are visible while they are written
    (SFTP, FTP), so a reader never sees half an object. Temporary names are hidden from
    listings (:func:`~storage_dsn.backend.is_temp`), and a killed writer's are swept by
    :meth:`sweep_temp`."""

    directories = True

    def sweep_temp(self, older_than: float) -> int:
        cutoff = time.time() - older_than
        try:
            found = self.base.find(self._root or "/", withdirs=False, detail=True)
        except FileNotFoundError:  # no root yet: nothing was ever written
            return 0
        removed = 0
        for path, info in found.items():
            mtime = _mtime(info)
            if not is_temp(path) or info.get("type") != "file" or mtime is None or mtime >= cutoff:
                continue
            try:
                self.base.rm_file(path)
            except FileNotFoundError:  # renamed or swept meanwhile
                continue
            removed += 1
        return removed

    def _put_bytes(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        temp = self._temp_for(path)
        self.base.pipe_file(temp, data)
        self._publish(temp, path, exclusive)

    def _put_file(self, local: str, path: str, *, exclusive: bool = False) -> None:
        temp = self._temp_for(path)
        self.base.put_file(local, temp)
        self._publish(temp, path, exclusive)

    def _publish(self, temp: str, path: str, exclusive: bool) -> None:
        try:
            self._refuse_existing(path, exclusive)
            self.base.mv(temp, path)
        except BaseException:
            self.base.rm_file(temp)
            raise

    def server_copy(self, source: Backend) -> Callable[[str], None] | None:
        return None  # an SFTP or FTP server has no copy command

    def _temp_for(self, path: str) -> str:
        head, _, _ = path.rpartition("/")
        directory = head or self._root
        self.base.makedirs(directory, exist_ok=True)
        return f"{directory}/{temp_name()}"


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
