"""The backend contract: what a storage asks of the scheme that holds its objects.

A :class:`Backend` is the I/O half of a :class:`~storage_dsn.Storage`: it receives keys
that :mod:`storage_dsn.keys` has already validated, relative to the storage's root. Every
method has a default built on a few primitives (``open_read``, ``open_write``, ``stat``,
``list``, ``delete``), so a backend implements those and overrides what it does better.
The questions the rest of the package would otherwise answer by a scheme's name are
methods here too: whether objects are local files, how to checksum one, how to keep a
copy's modification time.

The generic fsspec implementation is :class:`storage_dsn.schemes.generic.FsspecBackend`.
"""

from __future__ import annotations

import errno
import io
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO, ClassVar

# hashlib, mimetypes and tempfile are imported where they are used: a command
# that reads one small object should not pay for them at start-up.
if TYPE_CHECKING:
    from pathlib import Path

    from fsspec import AbstractFileSystem

    from .dsn import StorageConfig

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_JOBS",
    "METADATA_JOBS",
    "SWEEP_AGE",
    "AtomicWriter",
    "Backend",
    "BufferedAtomicWriter",
    "CheckedReader",
    "MetadataFix",
    "Stat",
    "Timeouts",
    "chunks",
    "file_path",
    "generic_error",
    "guess_type",
    "is_listable",
    "is_temp",
    "short_read",
    "temp_name",
]

#: How many requests ``read_many``/``write_many`` keep in flight on async backends.
DEFAULT_CONCURRENCY = 64
#: Requests in flight of a bulk command (``sync``, ``rm -r``) unless told otherwise.
DEFAULT_JOBS = 16
#: Objects ``update-metadata`` checks at once: each costs a round trip or two, mostly waiting.
METADATA_JOBS = 8
# Writes up to this size stay in memory and go out as one request (one PUT on S3); a
# larger write spills to a temporary file and uploads from there.
SPOOL_BYTES = 8 * 2**20
#: Backends that publish a write by renaming a temporary file name it
#: ``.storage-dsn-<16 hex>.tmp`` beside the key: a dot-file, never listed, never served.
TEMP_PREFIX = ".storage-dsn-"
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + "[0-9a-f]{16}" + re.escape(TEMP_SUFFIX))
#: How old a temporary file must be before :meth:`Storage.sweep_temp` removes it, in
#: seconds: a writer that has not renamed its file in an hour was killed (an upload of
#: many gigabytes over a slow link may take longer: raise it for those).
SWEEP_AGE = 3600


@dataclass(frozen=True)
class Timeouts:
    """How long a remote backend waits and how often it tries again (DSN parameters
    ``connect_timeout``, ``read_timeout``, ``retries``), mapped by each backend onto its
    library's own settings.

    The defaults bound a stalled server: a read that gets no byte fails after
    ``(retries + 1) * read`` seconds plus backoff, under a minute, never hangs.
    """

    #: Seconds to open a connection.
    connect: float = 5.0
    #: Seconds to wait for the next byte of an answer.
    read: float = 10.0
    #: Retries after the first attempt, with exponential backoff, for errors that may pass
    #: (5xx, SlowDown, resets, timeouts).
    retries: int = 3

    @classmethod
    def of(cls, config: StorageConfig) -> Timeouts:
        """The config's timeouts: its DSN's, else the defaults."""
        settings = config.settings
        default = cls()
        return cls(
            connect=float(settings.get("connect_timeout", default.connect)),
            read=float(settings.get("read_timeout", default.read)),
            retries=int(settings.get("retries", default.retries)),
        )


class CheckedReader(io.RawIOBase):
    """A raw reader over ``f`` that knows how many bytes the object has: an end of data
    before that is an :class:`OSError` (``EIO``), never a short success."""

    def __init__(self, f: BinaryIO, size: int, key: str) -> None:
        super().__init__()
        self._f = f
        self._left = size
        self._size = size
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer).cast("B")[: self._left]
        try:
            n = (
                self._f.readinto(view)
                if hasattr(self._f, "readinto")
                else _copy_into(self._f, view)
            )
        except OSError:
            raise
        except Exception as exc:  # a library's own error (a checksum mismatch, a reset)
            raise generic_error(exc, self._key) from exc
        if not n:
            raise short_read(self._key, self._size, self._size - self._left)
        self._left -= n
        return n

    def seekable(self) -> bool:
        return bool(self._f.seekable())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self._f.seek(offset, whence)
        self._left = self._size - position
        return position

    def tell(self) -> int:
        return self._size - self._left

    def close(self) -> None:
        self._f.close()
        super().close()


def _copy_into(f: BinaryIO, view: memoryview) -> int:
    data = f.read(len(view))
    view[: len(data)] = data
    return len(data)


def generic_error(exc: BaseException, key: str) -> OSError:
    """``exc`` as an OSError by its name: timeouts, connection failures, else ``EIO``;
    the message is its first line, bounded, so no multi-line dump reaches a user."""
    name = type(exc).__name__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{name}: {lines[0][:200]}" if lines else name
    lowered = f"{name} {text}".lower()
    cls, code = OSError, errno.EIO
    if "timeout" in lowered or "timed out" in lowered:
        cls, code = TimeoutError, errno.ETIMEDOUT
    elif any(word in lowered for word in ("connect", "disconnect", "reset", "closed", "refused")):
        cls, code = ConnectionError, errno.ECONNRESET
    # A listing of the whole storage has no key to name: no ": ''" after the message.
    return cls(code, text, key) if key else cls(code, text)


def short_read(key: str, expected: int, got: int) -> OSError:
    """The error for an object that arrived shorter than it is."""
    return OSError(errno.EIO, f"short read: the object has {expected} bytes, got {got}", key)


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


@dataclass(frozen=True)
class MetadataFix:
    """What :meth:`Backend.fix_metadata` found for one stored object, and did unless it
    was a dry run."""

    #: The settings that differed from what a write now would give the object
    #: (``content-type``, ``cache-control``, ``acl``, ...); empty when it was right.
    changed: tuple[str, ...] = ()
    #: Why the object cannot be fixed in place, or ``None``.
    skipped: str | None = None


class AtomicWriter(io.RawIOBase):
    """A binary file whose content becomes visible only when it is closed successfully.

    Leaving a ``with`` block by an exception, calling :meth:`discard`, or dropping the
    object unclosed throws the written bytes away; the old object, if any, stays.
    """

    def __init__(self) -> None:
        super().__init__()
        self._done = False
        self._holds: Callable[[int, str], bool] | None = None
        self._digest: Any = None
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._done:
            raise ValueError("write to a closed file")
        view = memoryview(data).cast("B")
        self._write(view)
        if self._digest is not None:
            self._digest.update(view)
            self._size += len(view)
        return len(view)

    def check_conflicts(self, holds: Callable[[int, str], bool]) -> None:
        """Before any write: when an exclusive commit is refused because the object exists,
        ask ``holds(size, md5_hex)`` whether the stored object is exactly what was written.

        A create whose answer was lost is retried by the client and then refused: the
        object is this writer's own, so the commit succeeded after all.
        """
        import hashlib

        self._holds = holds
        self._digest = hashlib.md5(usedforsecurity=False)

    def close(self) -> None:
        """Commit: make the written bytes the object's content."""
        if not self._done:
            self._done = True
            try:
                self._commit()
            except FileExistsError:
                self._discard()
                if self._holds is None or not self._holds(self._size, self._digest.hexdigest()):
                    raise
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
            import tempfile

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
    """The I/O a storage needs; keys arrive validated and relative to the root.

    Built by the scheme's backend factory with the storage's config and the environment
    the storage was opened with (credentials that are not in the DSN come from there).
    Building one makes no connection and imports no backend package: that happens on
    first I/O.
    """

    #: The objects live on this machine or in this process (``file``, ``memory``): no
    #: other server can hand them to a browser, so a web app serves them itself.
    local: ClassVar[bool] = False
    #: Each key is a regular file on this machine's disk: :meth:`open_file` and
    #: :meth:`local_path` work, and a web server may send it with ``sendfile``.
    files: ClassVar[bool] = False
    #: Objects carry per-object settings (a content type, ``Cache-Control``, ...) that
    #: :meth:`fix_metadata` can re-apply; local files and SFTP keep none.
    metadata: ClassVar[bool] = False
    #: Keys are files in directories, so no key can also be the directory of others
    #: (``a`` and ``a/b``); object stores hold both.
    directories: ClassVar[bool] = False

    def __init__(self, config: StorageConfig, *, environ: Mapping[str, str] = os.environ) -> None:
        self.config = config
        self.environ = environ

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
            for chunk in chunks(fileobj):
                out.write(chunk)

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

    def secrets_found(self) -> Sequence[str]:
        """The secrets the backend holds beyond its DSN's (credentials from the
        environment, a key file's private key), to keep out of all output; asked once,
        when the backend is made. By default none."""
        return ()

    def translate_error(self, exc: Exception, key: str) -> Exception:
        """What ``exc``, raised by the backend's library for ``key``, is: an OSError
        subclass (``FileNotFoundError``, ``PermissionError``, ``TimeoutError``,
        ``ConnectionError``, else ``OSError``) with the key and one line of message.

        :class:`~storage_dsn.Storage` calls this for every exception that is not already
        an OSError or a StorageDSNError; backends map what their library raises.
        """
        return generic_error(exc, key)

    def explain(self, exc: OSError) -> OSError:
        """``exc`` (an error on its way to the caller) with the fix in its message where
        the backend recognises a common mistake (a missing bucket, a skewed clock); by
        default ``exc`` itself."""
        return exc

    def public_read_fix(self) -> str:
        """What to change when a browser is refused this storage's objects (an anonymous
        GET of ``url()`` answered 403): the server setting or DSN parameter to try, for
        ``storage-dsn check --public``."""
        return (
            "let anonymous clients read the objects on the server, or have url() sign its "
            "URLs (qs_auth=true) where the scheme supports it"
        )

    def check_key(self, key: str) -> None:
        """Raise :class:`~storage_dsn.InvalidKeyError` for a valid key that this backend
        cannot hold (a file name longer than the file system allows); no I/O.

        Every key is at most 1024 UTF-8 bytes (:mod:`storage_dsn.keys`), S3's limit; by
        default a backend holds all of them.
        """

    def local_path(self, key: str) -> Path | None:
        """The path of ``key`` on this machine's disk, or ``None`` (see :attr:`files`)."""
        return None

    def sweep_temp(self, older_than: float) -> int:
        """Remove the temporary files (:func:`is_temp`) last modified more than
        ``older_than`` seconds ago, left by writers that were killed before they renamed
        them; return how many were removed.

        Only backends that publish writes by renaming a temporary file leave any; by
        default there is nothing to sweep and nothing is listed.
        """
        return 0

    def open_file(self, key: str) -> int:
        """A read-only descriptor of ``key``'s file, inside the root (see :attr:`files`).

        :class:`FileNotFoundError` for anything that is not such a file.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no local files")

    def md5(self, key: str, stat: Stat) -> str:
        """The hex MD5 of ``key``'s content, as :meth:`stat` or :meth:`scan` found it.

        By default the object is read and hashed; backends whose ``stat`` already carries
        the MD5 (S3's ETag of a single-part upload) answer without reading.
        """
        import hashlib

        digest = hashlib.md5(usedforsecurity=False)
        with self.open_read(key) as f:
            for chunk in chunks(f):
                digest.update(chunk)
        return digest.hexdigest()

    def concurrency(self) -> int | None:
        """How many threads may have requests in flight on this backend at once (``None``:
        any number). A filesystem on one blocking connection (FTP) takes one at a time;
        ``sync`` keeps its ``jobs`` within it."""
        return None

    def server_copy(self, source: Backend) -> Callable[[str], None] | None:
        """A function that copies a key from ``source`` into this backend inside the
        service (no byte through this process), when the two are one service and account
        (two prefixes or buckets behind one S3 endpoint and key, two containers of one
        Azure account); ``None`` otherwise, and by default.

        The copy gets this backend's upload settings where the service allows it.
        """
        return None

    def fix_metadata(self, key: str, *, dry_run: bool = False) -> MetadataFix:
        """Give the stored ``key`` what a write would give it now: the content type guessed
        from the key and the DSN's upload settings, in place and server-side (the bytes
        never pass through this process); settings the DSN leaves out are kept as stored.

        An object that is already right costs no write request. With ``dry_run`` nothing
        is changed, and the answer says what would be. Only asked when :attr:`metadata`.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no per-object metadata")

    def set_mtime(self, key: str, mtime: float) -> None:
        """Give ``key`` the modification time ``mtime``, where the backend can.

        A copy keeps its source's time so that the next sync sees it as up to date. Object
        stores set the upload time themselves, which is later than the source's and says
        the same: by default this does nothing.
        """


def chunks(fileobj: IO[bytes] | BinaryIO, size: int = 1024 * 1024) -> Iterator[bytes]:
    """What is left in ``fileobj``, ``size`` bytes at a time (shutil.copyfileobj's loop,
    without importing shutil and its compression modules at start-up)."""
    while chunk := fileobj.read(size):
        yield chunk


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


def temp_name() -> str:
    """A fresh temporary file name (no directory), recognisable by :func:`is_temp`."""
    return f"{TEMP_PREFIX}{os.urandom(8).hex()}{TEMP_SUFFIX}"


def is_temp(name: str) -> bool:
    """Whether the last segment of ``name`` is one of :func:`temp_name`'s names
    (``.storage-dsn-<16 hex>.tmp``, exactly: a user's ``.storage-dsn-notes.tmp`` is not)."""
    return _TEMP_NAME.fullmatch(name.rpartition("/")[2]) is not None


def is_listable(name: str) -> bool:
    """Whether a name a backend lists is a key: not empty, not a directory marker that
    other tools leave (``photos/``), not one of our temporary names."""
    return bool(name) and not name.endswith("/") and not is_temp(name)


def guess_type(key: str) -> str | None:
    """The content type for ``key`` by its extension, or ``None``."""
    import mimetypes

    return mimetypes.guess_type(key, strict=False)[0]
