"""``file:`` storages: a directory on the local disk.

Forms: ``file:///abs/path/``, ``file://localhost/abs/path/``, ``file:relative/path/`` and
``file:./relative/path/`` (relative to the working directory at parse time).

The backend does its I/O natively (``os``, not fsspec's per-call machinery) because local
media is read on every request in development, and it writes atomically: a temporary file
in the same directory, renamed over the key only when complete. Every path is checked by
its resolved form, so a symlink inside the root cannot lead outside it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..backend import AtomicWriter, Backend, Stat, guess_type, is_temp, temp_name
from ..dsn import flag
from ..errors import InvalidDSNError, InvalidKeyError
from .base import Scheme

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from ..dsn import DSNParts, StorageConfig

__all__ = ["SCHEMES", "LocalAtomicWriter", "LocalBackend", "parse_file"]

PARAMS = frozenset({"fsync"})
#: The longest file name the common file systems (ext4, XFS, btrfs, APFS, NTFS) take, in
#: bytes: a longer key segment cannot be a file, whatever the path.
NAME_MAX = 255


def parse_file(parts: DSNParts) -> StorageConfig:
    """Parse a ``file:`` DSN."""
    if parts.username is not None or parts.password is not None:
        raise InvalidDSNError("a file DSN takes no user name or password")
    if parts.host not in ("", "localhost") or parts.port is not None:
        raise InvalidDSNError(
            "a file DSN names a local path: file:///abs/path/ or file:relative/path/, not a host"
        )
    if not parts.path:
        raise InvalidDSNError("a file DSN needs a path: file:///abs/path/ or file:./relative/")
    root = os.path.normpath(os.path.abspath(parts.path))
    # fsync is ours: the local backend reads it, the filesystem class never sees it.
    settings = {"fsync": True} if flag(parts.params, "fsync") else {}
    return parts.config(
        protocol="file", root=root, settings=settings, public_url=parts.public_base("")
    )


class LocalBackend(Backend):
    """Native, atomic, root-confined I/O on a local directory."""

    local = True
    files = True
    directories = True

    def __init__(self, config: StorageConfig, *, environ: Mapping[str, str] = os.environ) -> None:
        super().__init__(config, environ=environ)
        self.root = config.root
        self._fsync = bool(config.settings.get("fsync", False))
        self._real_root: str | None = None
        self._fs: AbstractFileSystem | None = None

    @property
    def fs(self) -> AbstractFileSystem:
        if self._fs is None:
            from fsspec.implementations.dirfs import DirFileSystem
            from fsspec.implementations.local import LocalFileSystem

            self._fs = DirFileSystem(path=self.root, fs=LocalFileSystem())
        return self._fs

    def check_key(self, key: str) -> None:
        if len(key) <= NAME_MAX // 4:  # no segment can pass NAME_MAX bytes (4 per char)
            return
        for segment in key.split("/"):
            size = len(segment.encode("utf-8"))
            if size > NAME_MAX:
                raise InvalidKeyError(
                    f"a file name on a local storage is at most {NAME_MAX} UTF-8 bytes (the "
                    f"file system's limit); this key has a segment of {size}"
                )

    def local_path(self, key: str) -> Path:
        return Path(self.root, key)

    def resolve(self, key: str) -> str:
        """The real path of ``key``, checked to lie inside the root.

        Only the key's own components are examined (one ``lstat`` each, from the root's
        cached real path); a symlink among them is resolved in full and must stay inside
        the root, else :class:`FileNotFoundError`. Components that do not exist yet are
        appended as they are: nothing beyond them can be a link.
        """
        root = self.real_root
        path = root
        parts = key.split("/")
        for i, part in enumerate(parts):
            path = f"{path}/{part}"
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                return "/".join((path, *parts[i + 1 :]))
            except (NotADirectoryError, OSError):
                raise FileNotFoundError(key) from None
            if stat.S_ISLNK(mode):
                path = os.path.realpath(path)
                if not _inside(path, root):
                    raise FileNotFoundError(key)
        return path

    @property
    def real_root(self) -> str:
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root)
        return self._real_root

    def open_file(self, key: str) -> int:
        """A read-only descriptor of ``key``'s regular file, inside the root, race-free.

        Checking a path and then opening it are two steps, and a symlink swapped in
        between (a rename over the file, in a loop) would lead the open outside the root.
        So the check is made on what was opened: the descriptor's real path, as the kernel
        reports it (``/proc/self/fd``), must lie inside the root. Where the kernel cannot
        say, every component is opened with ``O_NOFOLLOW`` from the root instead, and no
        symlink is followed at all. The file is opened non-blocking and must be a regular
        file: a FIFO or device would hang a worker.
        """
        try:
            if _FD_PATHS:
                fd = os.open(self.resolve(key), _READ_FLAGS)
                if not _inside(os.readlink(f"{_FD_PATHS}/{fd}"), self.real_root):
                    os.close(fd)
                    raise FileNotFoundError(key)
            else:
                fd = _open_beneath(self.real_root, key)
        except FileNotFoundError:
            raise FileNotFoundError(key) from None
        except (OSError, ValueError):  # a directory on the way, a loop, a name too long...
            raise FileNotFoundError(key) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise FileNotFoundError(key)
        return fd

    def set_mtime(self, key: str, mtime: float) -> None:
        os.utime(self.resolve(key), (mtime, mtime))

    def open_read(self, key: str) -> BinaryIO:
        return os.fdopen(self.open_file(key), "rb")

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as f:
            return f.read()

    def open_write(self, key: str, *, exclusive: bool = False) -> AtomicWriter:
        path = self.resolve(key)
        try:
            return LocalAtomicWriter(path, fsync=self._fsync, exclusive=exclusive)
        except FileNotFoundError:  # the parent directory does not exist yet
            os.makedirs(os.path.dirname(path), exist_ok=True)
        # The new directories lie under a resolved, checked path, but check again: a
        # concurrent writer may have put a symlink there in between.
        return LocalAtomicWriter(self.resolve(key), fsync=self._fsync, exclusive=exclusive)

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_write(key) as f:
            f.write(data)

    def exists(self, key: str) -> bool:
        try:
            return os.path.isfile(self.resolve(key))
        except FileNotFoundError:
            return False

    def delete(self, key: str) -> None:
        path = self.resolve(key)
        if not os.path.isfile(path):
            raise FileNotFoundError(key)
        os.remove(path)

    def stat(self, key: str) -> Stat:
        path = self.resolve(key)
        try:
            st = os.stat(path)
        except NotADirectoryError:
            raise FileNotFoundError(key) from None
        if not os.path.isfile(path):
            raise FileNotFoundError(key)
        return Stat(size=st.st_size, mtime=st.st_mtime, etag=None, content_type=guess_type(key))

    def list(self, prefix: str) -> Iterator[str]:
        return (key for key, _ in self._entries(prefix))

    def scan(self, prefix: str) -> Iterator[tuple[str, Stat]]:
        for key, entry in self._entries(prefix):
            st = entry.stat()  # cached by scandir for plain files; follows an inside link
            yield key, Stat(st.st_size, st.st_mtime, None, guess_type(key))

    def _entries(self, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        directory = prefix.rpartition("/")[0]
        try:
            top = self.resolve(directory) if directory else self.root
        except FileNotFoundError:
            return iter(())
        return ((k, e) for k, e in self._walk(top, directory) if k.startswith(prefix))

    def _walk(self, top: str, rel: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """The tree under ``top`` in key order, lazily: one directory's entries in memory
        per level. A directory sorts as its name plus ``/``, which is where its keys sort
        (``a-b`` < ``a.txt`` < ``a/x`` < ``a0``), so the walk is the sorted listing."""
        try:
            with os.scandir(top) as scan:
                entries = sorted(
                    scan,
                    key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name,
                )
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            key = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(entry.path, key)
            elif is_temp(entry.name):
                continue
            elif entry.is_file(follow_symlinks=False) or self._link_inside(entry.path):
                yield key, entry

    def _link_inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return os.path.isfile(real) and _inside(real, self.real_root)

    def sweep_temp(self, older_than: float) -> int:
        cutoff = time.time() - older_than
        removed = 0
        # Not following symlinks: a link to a directory outside the root is not ours.
        for directory, _, names in os.walk(self.real_root):
            for name in filter(is_temp, names):
                path = os.path.join(directory, name)
                with contextlib.suppress(FileNotFoundError):  # renamed or swept meanwhile
                    st = os.lstat(path)
                    if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
        return removed


class LocalAtomicWriter(AtomicWriter):
    """Writes to a temporary file beside ``path`` and renames it into place on close.

    With ``exclusive``, the file is hard-linked into place instead, which fails when
    ``path`` exists: the check and the publication are one step.
    """

    def __init__(self, path: str, *, fsync: bool = False, exclusive: bool = False) -> None:
        super().__init__()
        self._done = True  # nothing to discard until the temporary file exists
        self.path = path
        self._fsync = fsync
        self._exclusive = exclusive
        directory = os.path.dirname(path)
        for _ in range(100):
            temp = os.path.join(directory, temp_name())
            try:
                # 0o666 less the umask, as open() would give: nginx must be able to read it.
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of 64 random bits
            raise FileExistsError(temp)
        self._temp = temp
        self._file = os.fdopen(fd, "wb")
        self._done = False

    def _write(self, data: memoryview) -> None:
        self._file.write(data)

    def _commit(self) -> None:
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self._file.close()
        if self._exclusive:
            os.link(self._temp, self.path)  # FileExistsError when taken; _discard cleans up
            os.unlink(self._temp)
        else:
            os.replace(self._temp, self.path)
        if self._fsync:
            _fsync_dir(os.path.dirname(self.path))

    def _discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)


# Where the kernel names an open descriptor's file (Linux's /proc), or None.
_FD_PATHS = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else None
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK


def _open_beneath(root: str, key: str) -> int:
    """Open ``key`` below ``root`` one component at a time, following no symlink."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(root, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_DIRECTORY", 0))
    try:
        *directories, name = key.split("/")
        for part in directories:
            inner = os.open(part, os.O_RDONLY | os.O_CLOEXEC | nofollow, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(name, _READ_FLAGS | nofollow, dir_fd=fd)
    finally:
        os.close(fd)


def _inside(path: str, root: str) -> bool:
    """Whether ``path`` is strictly below ``root`` (both real, absolute paths)."""
    return path != root and os.path.commonpath((path, root)) == root


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def details(config: StorageConfig) -> list[tuple[str, str]]:
    """A row for ``storage-dsn check``: whether the root exists (else the first write
    creates it, as Django's FileSystemStorage does)."""
    root = Path(config.root)
    if root.is_dir():
        state = "exists"
    elif root.exists():
        state = "NOT A DIRECTORY: every write will fail"
    else:
        state = "does not exist yet: the first write creates it (check the path for a typo)"
    return [("on disk", state)]


SCHEMES = (
    Scheme(name="file", parse=parse_file, params=PARAMS, backend=LocalBackend, details=details),
)
