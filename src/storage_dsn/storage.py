"""The :class:`Storage` facade and :func:`open_storage`.

A storage validates every key before any I/O (see :mod:`storage_dsn.keys`) and hands the
work to its scheme's backend, which is created on first use: opening a storage imports
no backend and makes no connection.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from .backend import (
    METADATA_JOBS,
    SWEEP_AGE,
    AtomicWriter,
    Backend,
    MetadataFix,
    Stat,
    chunks,
    is_temp,
)
from .dsn import StorageConfig, secret_values
from .errors import ConfigurationError, InvalidKeyError, StorageDSNError
from .keys import validate_key, validate_prefix
from .redaction import guarded, install_log_filter, remember, scrub_exception
from .registry import get_scheme, parse_dsn
from .urls import Clock, UploadForm, Urls

if TYPE_CHECKING:
    from pathlib import Path

    from fsspec import AbstractFileSystem

    from .metadata import MetadataEvent, MetadataResult

__all__ = ["DEFAULT_ENV", "Stat", "Storage", "clear_cache", "make_resolver", "open_storage"]

#: The environment variable :func:`open_storage` reads when given no DSN.
DEFAULT_ENV = "DEFAULT_STORAGE_DSN"

log = logging.getLogger(__name__)

R = TypeVar("R")
T = TypeVar("T")
_cache: dict[StorageConfig, Storage] = {}
# The DSN strings seen, so a per-request open_storage() is a dict lookup, not a parse.
_by_dsn: dict[str, Storage] = {}
_MAX_DSN_ALIASES = 256
_cache_lock = threading.Lock()


@guarded
def open_storage(
    dsn: str | None = None,
    *,
    env: str = DEFAULT_ENV,
    default: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Storage:
    """Open the storage a DSN names; cheap to call per request.

    With ``dsn=None`` the DSN comes from the environment variable ``env``, else from
    ``default``; with neither, :class:`ConfigurationError`. The same config always gives
    the same :class:`Storage`. Raises :class:`MissingBackendError` when the scheme's extra
    is not installed (checked here, imported on first I/O).

    ``environ`` is where the DSN and any credentials not in it (``AWS_*``) are read; a
    storage opened with another mapping than :data:`os.environ` is not shared.
    """
    if dsn is None:
        dsn = environ.get(env) or default
        if not dsn:
            raise ConfigurationError(
                f"no storage DSN: set the {env} environment variable or pass a default"
            )
    if environ is not os.environ:
        config = parse_dsn(dsn)
        get_scheme(config.scheme).check_installed(config)
        return Storage(config, environ=environ)
    storage = _by_dsn.get(dsn)
    if storage is not None:
        return storage
    config = parse_dsn(dsn)
    storage = _cache.get(config)
    if storage is None:
        get_scheme(config.scheme).check_installed(config)
        with _cache_lock:
            storage = _cache.setdefault(config, Storage(config))
    with _cache_lock:
        if len(_by_dsn) >= _MAX_DSN_ALIASES:
            _by_dsn.clear()
        _by_dsn[dsn] = storage
    return storage


def _errors(method: Callable[..., R]) -> Callable[..., R]:
    """Run a Storage method with the backend's errors translated to what they are
    (``Backend.translate_error``): an ``OSError`` subclass with the key, one line."""

    @functools.wraps(method)
    def wrapper(self: Storage, key: Any, *args: Any, **kwargs: Any) -> R:
        try:
            return method(self, key, *args, **kwargs)
        except Exception as exc:
            error = _explained(self, exc, key if isinstance(key, str) else "")
            scrub_exception(exc)  # no secret in its text, nor in the frames it left
            if error is exc:
                raise
            scrub_exception(error)
            raise error from exc

    return wrapper


def _explained(storage: Storage, exc: Exception, key: str) -> Exception:
    """What ``exc`` is, for the caller: library exceptions translated
    (``Backend.translate_error``), then OSErrors explained (``Backend.explain``)."""
    if isinstance(exc, StorageDSNError) or (not isinstance(exc, OSError) and _ours(exc)):
        return exc
    backend = storage.backend
    error = exc if isinstance(exc, OSError) else backend.translate_error(exc, key)
    return backend.explain(error) if isinstance(error, OSError) else error


def _ours(exc: Exception) -> bool:
    """Whether ``exc`` already says what it is: an OSError, one of ours, or a built-in
    (ValueError, TypeError, ...); only a library's own exception classes are translated."""
    return isinstance(exc, (OSError, StorageDSNError)) or type(exc).__module__ == "builtins"


class Storage:
    """Media storage behind a DSN: keys in, bytes and URLs out.

    Keys are relative POSIX paths; every method raises :class:`InvalidKeyError` for an
    unsafe one before any I/O, and :class:`FileNotFoundError` for a missing one.
    """

    def __init__(self, config: StorageConfig, *, environ: Mapping[str, str] = os.environ) -> None:
        self._config = config
        self._environ = environ
        self._scheme = get_scheme(config.scheme)
        self._url: Urls | None = None  # built on first use (S3's imports its signer)
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        # From now on no output of the package or its libraries shows these secrets.
        remember(secret_values(config))
        install_log_filter()

    def __repr__(self) -> str:
        return f"Storage({self._config.redacted()!r})"

    @property
    def _urls(self) -> Urls:
        urls = self._url
        if urls is None:  # two threads may both build one: they are the same
            urls = self._url = self._scheme.resolver(self._config, environ=self._environ)
        return urls

    @property
    def config(self) -> StorageConfig:
        """The storage's :class:`StorageConfig`."""
        return self._config

    @property
    def backend(self) -> Backend:
        """The scheme's backend, created on first use."""
        backend = self._backend
        if backend is None:
            with self._lock:
                if self._backend is None:
                    created = self._scheme.open_backend(self._config, environ=self._environ)
                    remember(created.secrets_found())  # from the environment, key files
                    self._backend = created
                backend = self._backend
        return backend

    def _iterate(self, start: Callable[[], Iterator[T]], prefix: str) -> Iterator[T]:
        """Items from ``start()``, with the backend's errors translated while iterating."""
        try:
            yield from start()
        except Exception as exc:
            error = _explained(self, exc, prefix)
            scrub_exception(exc)
            if error is exc:
                raise
            scrub_exception(error)
            raise error from exc

    def _checked(self, key: str) -> str:
        """``key``, validated, and one this storage's backend can hold (else
        :class:`InvalidKeyError`, before any I/O)."""
        if is_temp(validate_key(key)):
            raise InvalidKeyError(
                "names like .storage-dsn-<16 hex>.tmp are reserved for the temporary files "
                "of writes in progress (never listed, swept when old)"
            )
        self.backend.check_key(key)
        return key

    @staticmethod
    def _valid(
        found: Iterator[tuple[str, T]], invalid: Callable[[str, str], object] | None
    ) -> Iterator[tuple[str, T]]:
        """The listed names that are keys; the others reported to ``invalid`` or logged."""
        for name, item in found:
            try:
                validate_key(name)
            except InvalidKeyError as exc:
                if invalid is None:
                    log.warning("skipped a listed name that is not a valid key: %r (%s)", name, exc)
                else:
                    invalid(name, str(exc))
                continue
            yield name, item

    @property
    @guarded
    def fs(self) -> AbstractFileSystem:
        """An fsspec filesystem rooted at ``config.root``: keys are relative paths."""
        return self.backend.fs

    @guarded
    def url(
        self,
        key: str,
        *,
        expires: int | None = None,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """The public URL of ``key``; presigned when ``config.signed_urls``.

        ``expires`` (seconds) overrides the DSN's lifetime for a presigned URL.
        ``download_name`` makes the response ``Content-Disposition: attachment`` with that
        file name (an ASCII fallback and the UTF-8 form); ``content_type`` overrides the
        response's type. On S3 both are signed ``response-*`` parameters, so such a URL is
        presigned even for a public storage. Raises :class:`NoPublicURLError` when the
        storage has no such URL. No network I/O.
        """
        # The URL maker validates the key.
        return self._urls.url(key, expires, download_name=download_name, content_type=content_type)

    @guarded
    def upload_url(
        self, key: str, *, expires: int | None = None, content_type: str | None = None
    ) -> str:
        """A presigned URL a browser may ``PUT`` ``key`` to (S3, Azure SAS, GCS V4).

        With ``content_type`` the type is part of the signature: an upload with another
        type is refused by the server. :class:`NoPublicURLError` where the backend cannot
        sign. No network I/O.
        """
        return self._urls.upload_url(key, expires, content_type=content_type)

    @guarded
    def upload_form(
        self,
        key: str,
        *,
        expires: int | None = None,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> UploadForm:
        """An :class:`~storage_dsn.UploadForm` for a browser's multipart ``POST`` of ``key``.

        ``key`` ending in ``/`` accepts any file name under that prefix; ``content_type``
        ending in ``/`` or ``/*`` is a prefix (``image/``); ``max_size`` bounds the upload
        in bytes. The DSN's upload settings are part of the signed policy.
        :class:`NoPublicURLError` where the backend cannot sign. No network I/O.
        """
        return self._urls.upload_form(key, expires, max_size=max_size, content_type=content_type)

    @_errors
    def open(self, key: str, mode: str = "rb") -> IO[Any]:
        """Open ``key``: ``rb``/``r`` to read, ``wb``/``w`` to write, ``xb``/``x`` to create.

        A write becomes visible only when the file is closed without error: leaving a
        ``with`` block by an exception keeps the old object (or none). ``x`` never
        replaces an object: closing raises :class:`FileExistsError` if ``key`` exists then
        (not at open, as a local ``open()`` would, since the object appears only at close).
        """
        self._checked(key)
        raw: IO[Any]
        if mode in ("rb", "r"):
            raw = self.backend.open_read(key)
        elif mode in ("wb", "w", "xb", "x"):
            exclusive = mode.startswith("x")
            writer = self.backend.open_write(key, exclusive=exclusive)
            if exclusive:
                writer.check_conflicts(functools.partial(self._holds, key))
            raw = cast("IO[bytes]", writer)
        else:
            raise ValueError(f"mode must be 'rb', 'wb', 'xb', 'r', 'w' or 'x', not {mode!r}")
        if "b" in mode:
            return raw
        if isinstance(raw, AtomicWriter):
            return _AtomicText(raw)
        return io.TextIOWrapper(raw, encoding="utf-8")

    @_errors
    def read_bytes(self, key: str) -> bytes:
        """The whole content of ``key``."""
        return self.backend.read_bytes(self._checked(key))

    @_errors
    def write_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` as ``key``, atomically."""
        self.backend.write_bytes(self._checked(key), data)

    @_errors
    def save(
        self,
        key: str,
        fileobj: BinaryIO | IO[bytes],
        *,
        overwrite: bool = True,
        adopt: bool = True,
    ) -> str:
        """Stream a readable binary file object into ``key``, atomically; return the key.

        With ``overwrite=False`` an existing ``key`` is kept and :class:`FileExistsError`
        raised. Checking and writing are one step on local files and memory (a hard link,
        a lock) and on S3 (a conditional write, ``If-None-Match: *``), so of two
        concurrent saves to one key exactly one wins; other backends check first. A
        refused write finds out whether the stored object is its own (a create whose
        answer was lost, then retried): if it is, the save succeeded. ``adopt=False``
        skips that: an identical object stored by another writer is not this save's, so
        two saves of the same bytes never both claim one key (Django's available names).
        """
        self._checked(key)
        if overwrite or not adopt:
            self.backend.save(key, fileobj, exclusive=not overwrite)  # type: ignore[arg-type]
            return key
        source: Any = fileobj
        try:
            start = fileobj.tell() if fileobj.seekable() else None
        except (AttributeError, OSError, ValueError):
            start = None
        if start is None:  # hash it on the way, there is no reading it again
            source = _Hashing(fileobj)
        try:
            self.backend.save(key, source, exclusive=True)
        except FileExistsError:
            if start is None:
                size, md5 = source.size, source.digest.hexdigest()
            else:
                fileobj.seek(start)
                size, md5 = _hash(fileobj)
            if not self._holds(key, size, md5):
                raise FileExistsError(key) from None
        return key

    def _holds(self, key: str, size: int, md5: str) -> bool:
        """Whether ``key`` is stored with exactly ``size`` bytes whose MD5 is ``md5``."""
        try:
            stat = self.backend.stat(key)
            return stat.size == size and self.backend.md5(key, stat) == md5
        except OSError:
            return False

    @_errors
    def exists(self, key: str) -> bool:
        """Whether an object named ``key`` exists (a directory is not one)."""
        return self.backend.exists(self._checked(key))

    @_errors
    def delete(self, key: str) -> None:
        """Delete ``key``; :class:`FileNotFoundError` if there is none."""
        self.backend.delete(self._checked(key))

    @_errors
    def stat(self, key: str) -> Stat:
        """Size, modification time, ETag and content type of ``key``."""
        return self.backend.stat(self._checked(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        """The keys that start with ``prefix``, recursively, sorted.

        Names other tools can store that are not valid keys (S3 takes ``a//b``, ``/a``,
        ``a/../b``) are skipped with a warning in the log, so every listed key can be read;
        folder markers (``photos/``) and temporary files are not keys either.
        """
        validate_prefix(prefix)

        def keys() -> Iterator[str]:
            names = ((name, None) for name in self.backend.list(prefix))
            return (key for key, _ in self._valid(names, None))

        return self._iterate(keys, prefix)

    def scan(
        self, prefix: str = "", *, invalid: Callable[[str, str], object] | None = None
    ) -> Iterator[tuple[str, Stat]]:
        """Like :meth:`list`, with each key's :class:`Stat`, from the same listing.

        One listing request per page on S3, one ``scandir`` per directory locally: no
        request per key. The ``Stat`` of a listing may lack the content type.
        ``invalid(name, reason)`` is called for each listed name that is not a valid key
        (instead of a warning in the log); such names are skipped either way.
        """
        validate_prefix(prefix)
        return self._iterate(lambda: self._valid(self.backend.scan(prefix), invalid), prefix)

    def sweep_temp(self, older_than: float = SWEEP_AGE) -> int:
        """Remove the temporary files that writers killed mid-write left behind; return
        how many were removed.

        Backends that publish a write by renaming a temporary file (``file``, ``sftp``)
        name it ``.storage-dsn-<16 hex>.tmp`` beside the key; a writer killed before the
        rename leaves it there. Only such names last modified more than ``older_than``
        seconds ago are removed (a younger one may belong to a write in progress), never
        anything else. Object stores write no temporary files: 0.
        ``storage-dsn check --connect --repair`` runs this.
        """
        if older_than < 0:
            raise ValueError(f"older_than must be 0 or more seconds, not {older_than!r}")
        try:
            return self.backend.sweep_temp(older_than)
        except Exception as exc:
            error = _explained(self, exc, "")
            if error is exc:
                raise
            raise error from exc

    @_errors
    def read_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The content of each key, fetched concurrently on async backends (S3)."""
        wanted = [self._checked(k) for k in keys]
        return self.backend.read_many(wanted)

    @_errors
    def write_many(self, items: Mapping[str, bytes]) -> None:
        """Store each ``key: data`` pair, concurrently on async backends; each write atomic."""
        for key in items:
            self._checked(key)
        self.backend.write_many(items)

    def update_metadata(
        self,
        prefix: str = "",
        *,
        dry_run: bool = False,
        progress: Callable[[MetadataEvent], None] | None = None,
        jobs: int = METADATA_JOBS,
    ) -> MetadataResult:
        """Give the objects under ``prefix`` what a write through this storage would give
        them now: the content type guessed from the key and the DSN's upload settings
        (``acl``, ``cache_control``, ``storage_class``, ``sse``), in place and server-side
        (S3: a copy onto itself with replaced metadata; Azure: the blob's properties;
        GCS: a patch). The bytes never move; objects already right cost no write.

        ``progress`` is called once per object with a
        :class:`~storage_dsn.metadata.MetadataEvent`. A storage whose backend keeps no
        per-object metadata (local files, SFTP) answers ``supported=False``.
        """
        validate_prefix(prefix)
        from .metadata import MetadataResult, update_all  # the loop, for this method only

        if not self.backend.metadata:
            return MetadataResult(dry_run=dry_run, supported=False)
        # Names other tools stored that are not keys stay in the run, in listing order,
        # to be reported as skipped (refused before any request) rather than left unsaid.
        keys: list[str] = []
        keys.extend(key for key, _ in self.scan(prefix, invalid=lambda name, _: keys.append(name)))
        fix = functools.partial(self._fix_metadata, dry_run=dry_run)
        return update_all(keys, fix, dry_run=dry_run, progress=progress, jobs=jobs)

    @_errors
    def _fix_metadata(self, key: str, *, dry_run: bool) -> MetadataFix:
        return self.backend.fix_metadata(self._checked(key), dry_run=dry_run)

    # For sync: backend calls with the storage's error translation and scrubbing.

    @_errors
    def _md5(self, key: str, stat: Stat) -> str:
        return self.backend.md5(self._checked(key), stat)

    @_errors
    def _set_mtime(self, key: str, mtime: float) -> None:
        self.backend.set_mtime(self._checked(key), mtime)

    def local_path(self, key: str) -> Path | None:
        """The local path of ``key`` for ``file`` storages, ``None`` elsewhere."""
        return self.backend.local_path(self._checked(key))

    def for_transfer(self) -> Storage:
        """The storage to move many or large objects through: the same objects, by the
        engine that moves bytes fastest where the DSN leaves the choice open.

        On S3 that is ``engine=obstore`` when obstore is installed and the DSN names no
        engine (nor ``acl=`` or ``auth=s3``, which obstore cannot honour); elsewhere, and
        when the DSN chose, the storage itself. ``storage-dsn sync`` moves through it.
        """
        dsn = self._scheme.dsn_for_transfer(self._config)
        if dsn is None:
            return self
        return open_storage(dsn, environ=self._environ)


class _AtomicText(io.TextIOWrapper):
    """Text over an atomic writer, as atomic: leaving a ``with`` block by an exception, or
    dropping the file unclosed, discards the write (a plain TextIOWrapper's close would
    commit it)."""

    def __init__(self, writer: AtomicWriter) -> None:
        super().__init__(cast("IO[bytes]", writer), encoding="utf-8")
        self._writer = writer
        self._abandoned = False

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abandon()

    def __del__(self) -> None:
        if not self._abandoned and not self.closed:
            self._abandon()

    def _abandon(self) -> None:
        self._abandoned = True
        self.detach()  # hands the writer back (flushing pending text into it) unclosed
        self._writer.discard()


class _Hashing(io.RawIOBase):
    """Reads through ``raw``, counting and hashing what passes."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        import hashlib

        self.size = 0
        self.digest = hashlib.md5(usedforsecurity=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.digest.update(data)
        self.size += n
        return n


def _hash(fileobj: IO[bytes]) -> tuple[int, str]:
    """The size and hex MD5 of what is left in ``fileobj``."""
    import hashlib

    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    for chunk in chunks(fileobj):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def make_resolver(
    config: StorageConfig,
    *,
    environ: Mapping[str, str] = os.environ,
    clock: Clock = time.time,
) -> Urls:
    """The :class:`~storage_dsn.urls.Urls` ``config``'s scheme builds (also callable as
    ``resolver(key, expires) -> URL``)."""
    return get_scheme(config.scheme).resolver(config, environ=environ, clock=clock)


def clear_cache() -> None:
    """Forget every opened storage (for tests, and after the environment changed)."""
    with _cache_lock:
        _cache.clear()
        _by_dsn.clear()
