"""The ``engine=obstore`` backend for ``s3:`` storages.

obstore (Rust's ``object_store`` under Python) costs about a tenth of s3fs's client CPU per
request, which is what bounds s3fs when many small objects move (see BENCHMARKS.md). The
storage's options keep the s3fs shape, so URLs and ``check`` work the same; this module
translates them. ``Storage.fs`` is obstore's own fsspec adapter, rooted like the s3fs one.
"""

from __future__ import annotations

import atexit
import errno
import functools
import importlib.util
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeVar

from ...backend import (
    DEFAULT_CONCURRENCY,
    AtomicWriter,
    Backend,
    BufferedAtomicWriter,
    MetadataFix,
    Stat,
    Timeouts,
    file_path,
    guess_type,
    is_listable,
    short_read,
)
from ...errors import MissingBackendError
from ...parts import PART_SIZE, PARTS_IN_FLIGHT, RangedReader, part_size
from .hints import explain, public_read_fix
from .location import credentials, etag_md5, location, same_service, upload_settings

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import Future

    from fsspec import AbstractFileSystem

    from ...dsn import StorageConfig

__all__ = ["ObstoreBackend"]

log = logging.getLogger(__name__)

T = TypeVar("T")
# Up to this size a file is one PUT; above, a multipart upload of part_size parts,
# PARTS_IN_FLIGHT at once (storage_dsn.parts: the memory budget of every engine).
SINGLE_PUT = 64 * 1024 * 1024
STREAM_CHUNK = 1024 * 1024


# obstore's exceptions by name: the OSError each one is, and its errno.
_ERRORS: dict[str, tuple[type[OSError], int]] = {
    "NotFoundError": (FileNotFoundError, errno.ENOENT),
    "PermissionDeniedError": (PermissionError, errno.EACCES),
    "UnauthenticatedError": (PermissionError, errno.EACCES),
    "AlreadyExistsError": (FileExistsError, errno.EEXIST),
}
_METHOD = re.compile(r"Error performing (\w+) ")
_STATUS = re.compile(r"status code: (\d{3}[^:]*)")
_S3_CODE = re.compile(r"<Code>([^<]{1,64})</Code>")
# A bulk delete's per-key refusal: "DeleteObjects request failed for key K: ... (code: X)".
_BULK_CODE = re.compile(r"\(code: (\w{1,64})\)")
_DENIED = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
    }
)


def _oserror(key: str, exc: BaseException) -> OSError:
    """``exc`` from obstore as the OSError it is: one line with the HTTP status, the S3
    error code and the method (obstore's own message is its whole Rust debug chain)."""
    text = str(exc)
    cls, code = _ERRORS.get(type(exc).__name__, (OSError, errno.EIO))
    status = _STATUS.search(text)
    s3_code = _S3_CODE.search(text) or _BULK_CODE.search(text)
    if status or s3_code:
        summary = status.group(1).strip() if status else "refused"
        if s3_code:
            summary += f" ({s3_code.group(1)})"
        method = _METHOD.search(text)
        if method:
            summary += f" on {method.group(1)}"
        refused = (status and status.group(1)[:3] in ("401", "403")) or (
            s3_code and s3_code.group(1) in _DENIED
        )
        if cls is OSError and refused:
            cls, code = PermissionError, errno.EACCES
        return cls(code, summary, key) if key else cls(code, summary)
    summary = text.splitlines()[0][:200] if text else type(exc).__name__
    lowered = text.lower()
    if cls is OSError and "timed out" in lowered:
        cls, code = TimeoutError, errno.ETIMEDOUT
    elif cls is OSError and any(w in lowered for w in ("connect", "sending request", "reset")):
        cls, code = ConnectionError, errno.ECONNRESET
    return cls(code, summary, key) if key else cls(code, summary)


class _Unlistable(Exception):
    """A listing page holds a name object_store cannot parse."""


@contextmanager
def _obstore_errors(key: str) -> Iterator[None]:
    from obstore.exceptions import BaseError

    try:
        yield
    except (FileNotFoundError, FileExistsError):
        raise
    except BaseError as exc:
        raise _oserror(key, exc) from None


def _translating(method: Callable[..., T]) -> Callable[..., T]:
    """Run a backend method with obstore's errors translated (see :func:`_oserror`)."""

    @functools.wraps(method)
    def wrapper(self: Backend, what: object, *args: Any, **kwargs: Any) -> T:
        with _obstore_errors(what if isinstance(what, str) else ""):
            return method(self, what, *args, **kwargs)

    return wrapper


class ObstoreBackend(Backend):
    """S3 through obstore; each PUT is atomic, and so is each multipart upload."""

    def __init__(self, config: StorageConfig, *, environ: Mapping[str, str] = os.environ) -> None:
        super().__init__(config, environ=environ)
        self._loc = location(config)
        upload = upload_settings(config)
        # Upload settings object_store sends as attributes of each PUT (SSE is in the
        # store's config, see _settings; an ACL it cannot send, which parsing refuses).
        self._upload_attributes = {
            attribute: upload[name]
            for name, attribute in (
                ("CacheControl", "Cache-Control"),
                ("StorageClass", "Storage-Class"),
            )
            if name in upload
        }
        self._store: Any = None
        self._fs: AbstractFileSystem | None = None
        self._lock = threading.Lock()

    # -- construction -------------------------------------------------------------------

    def secrets_found(self) -> Sequence[str]:
        return [v for v in credentials(self.config, self.environ) or () if v]

    def _settings(self) -> tuple[Any, Any]:
        """obstore's S3 config and client options for this storage.

        Typed ``Any``: obstore declares them as TypedDicts, and these are built at run time.
        """
        loc = self._loc
        endpoint = loc.endpoint
        if not loc.path_style:
            scheme, _, host = endpoint.partition("://")
            endpoint = f"{scheme}://{loc.bucket}.{host}"  # obstore wants the bucket in it
        settings: dict[str, Any] = {
            "endpoint": endpoint,
            "region": loc.region,
            "virtual_hosted_style_request": not loc.path_style,
            # Every upload carries its CRC64-NVME (per part for multipart), which S3
            # checks before it stores anything: a corrupted body is refused, not kept.
            # A SHA-256 did the same at 15x the client CPU (0.9 s per 128 MiB here), and
            # a signed payload alone is not enough: SeaweedFS stores a body whose
            # x-amz-content-sha256 does not match it (tests/test_large.py corrupts one).
            # So the payload is not hashed for the signature, and the CRC guards it.
            "checksum_algorithm": "crc64nvme",
            "unsigned_payload": True,
        }
        upload = upload_settings(self.config)
        if "ServerSideEncryption" in upload:
            settings["server_side_encryption"] = upload["ServerSideEncryption"]
        if "SSEKMSKeyId" in upload:
            settings["sse_kms_key_id"] = upload["SSEKMSKeyId"]
        found = credentials(self.config, self.environ)
        if found is not None:
            settings["access_key_id"], settings["secret_access_key"] = found[0], found[1]
            if found[2]:
                settings["session_token"] = found[2]
        timeouts = Timeouts.of(self.config)
        client: dict[str, Any] = {
            "connect_timeout": timedelta(seconds=timeouts.connect),
            "read_timeout": timedelta(seconds=timeouts.read),
        }
        if endpoint.startswith("http://"):
            client["allow_http"] = True
        return settings, client

    def _retry_config(self) -> Any:
        """obstore retries 5xx, resets and timeouts with backoff; bounded like s3fs's."""
        timeouts = Timeouts.of(self.config)
        budget = (timeouts.retries + 1) * (timeouts.connect + timeouts.read) + 15
        return {
            "max_retries": timeouts.retries,
            "retry_timeout": timedelta(seconds=budget),
            "backoff": {"init_backoff": timedelta(milliseconds=100), "base": 2},
        }

    @property
    def store(self) -> Any:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from obstore.store import S3Store

                    settings, client = self._settings()
                    self._store = S3Store(
                        self._loc.bucket,
                        prefix=self._loc.prefix or None,
                        client_options=client,
                        retry_config=self._retry_config(),
                        **settings,
                    )
        return self._store

    @property
    def fs(self) -> AbstractFileSystem:
        if self._fs is None:
            from fsspec.implementations.dirfs import DirFileSystem
            from obstore.fsspec import FsspecStore

            settings, client = self._settings()
            base = FsspecStore(
                "s3", config=settings, client_options=client, retry_config=self._retry_config()
            )
            root = f"{self._loc.bucket}/{self._loc.prefix}".rstrip("/")
            self._fs = DirFileSystem(path=root, fs=base)
        return self._fs

    # -- objects ------------------------------------------------------------------------

    @_translating
    def open_read(self, key: str) -> BinaryIO:
        meta = self._head(key)
        size = int(meta["size"])
        if size <= PART_SIZE:
            return io.BufferedReader(_StreamReader(self.store, key, size), 1024 * 1024)
        # Larger: parallel ranged GETs, PARTS_IN_FLIGHT ahead, each for the object with
        # the ETag seen here (parts of two versions never mix).
        store, etag = self.store, meta.get("e_tag")

        async def part(start: int, end: int) -> Any:
            import obstore

            options: Any = {"range": (start, end)}
            if etag:
                options["if_match"] = etag
            with _obstore_errors(key):
                result = await obstore.get_async(store, key, options=options)
                # obstore's Bytes, not a copy: the reader takes it as a buffer.
                return await result.bytes_async()

        def fetch(start: int, end: int) -> Future[Any]:
            return _submit(part(start, end))

        return io.BufferedReader(RangedReader(fetch, size, key), 1024 * 1024)

    def open_write(self, key: str, *, exclusive: bool = False) -> AtomicWriter:
        return BufferedAtomicWriter(
            commit_bytes=lambda data: self._put(key, data, exclusive=exclusive),
            commit_file=lambda local: self._put_path(key, local, exclusive=exclusive),
        )

    @_translating
    def save(self, key: str, fileobj: BinaryIO, *, exclusive: bool = False) -> None:
        path = file_path(fileobj)
        if path is None:
            super().save(key, fileobj, exclusive=exclusive)
        else:
            # Straight from the file: a multipart upload only becomes an object when it
            # completes, so this is as atomic as the spooled path, without the copy.
            self._put_path(key, path, exclusive=exclusive)

    @_translating
    def read_bytes(self, key: str) -> bytes:
        import obstore
        from obstore.exceptions import GenericError

        # obstore retries a request that fails, not a body that breaks off (a reset, an
        # answer without Content-Length, which it refuses): read again, then fail loudly.
        failure: OSError | None = None
        for attempt in range(Timeouts.of(self.config).retries + 1):
            if attempt:
                time.sleep(min(0.1 * 2**attempt, 5.0))
            try:
                result = obstore.get(self.store, key)
                data = bytes(result.bytes())
            except GenericError as exc:
                failure = _oserror(key, exc)
                continue
            if len(data) == int(result.meta["size"]):
                return data
            failure = short_read(key, int(result.meta["size"]), len(data))
        assert failure is not None
        raise failure

    @_translating
    def write_bytes(self, key: str, data: bytes) -> None:
        self._put(key, bytes(data))

    @_translating
    def _put(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        import obstore

        with _create_mode(key, exclusive) as mode:
            obstore.put(
                self.store,
                key,
                data,
                attributes=self._attributes(key),
                use_multipart=False,
                mode=mode,
            )

    @_translating
    def _put_path(self, key: str, local: str, *, exclusive: bool = False) -> None:
        from pathlib import Path

        import obstore

        # One PUT up to SINGLE_PUT bytes (as s3fs does up to 50 MiB): a multipart upload
        # costs three requests more and, on small parts, more than it saves. obstore makes
        # an exclusive ("create") upload one PUT whatever its size (S3 takes up to 5 GiB).
        size = os.path.getsize(local)
        multipart = size > SINGLE_PUT and not exclusive
        with _create_mode(key, exclusive) as mode:
            obstore.put(
                self.store,
                key,
                Path(local),
                attributes=self._attributes(key),
                use_multipart=multipart,
                chunk_size=part_size(size),
                max_concurrency=PARTS_IN_FLIGHT,
                mode=mode,
            )

    def _attributes(self, key: str) -> dict[str, str]:
        """What each PUT of ``key`` carries: its guessed type and the upload settings."""
        content_type = guess_type(key)
        found = {"Content-Type": content_type} if content_type else {}
        return {**found, **self._upload_attributes}

    def server_copy(self, source: Backend) -> Callable[[str], None] | None:
        """CopyObject between two locations of one endpoint and identity.

        Inside one bucket, with no upload settings to apply to the copies, object_store's
        own copy (one CopyObject, no botocore in the process); otherwise, or when that
        copy fails (an object over 5 GiB, which CopyObject refuses), an s3fs client on the
        same config (this storage's settings on each copy, UploadPartCopy above 5 GiB),
        when s3fs is installed."""
        fallback = self._s3fs_copier(source)
        if source.config.protocol != "s3" or upload_settings(self.config):
            return fallback
        where = location(source.config)
        if where.bucket != self._loc.bucket or not same_service(
            self.config, source.config, self.environ, source.environ
        ):
            return fallback
        import obstore

        store = self._bucket_store
        source_root = f"{where.prefix}/" if where.prefix else ""
        root = f"{self._loc.prefix}/" if self._loc.prefix else ""

        def copy(key: str) -> None:
            try:
                with _obstore_errors(key):
                    obstore.copy(store, source_root + key, root + key)
            except (FileNotFoundError, PermissionError):
                raise
            except OSError:
                if fallback is None:
                    raise
                fallback(key)  # what one CopyObject cannot do, s3fs's managed copy can

        return copy

    def _s3fs_copier(self, source: Backend) -> Callable[[str], None] | None:
        if importlib.util.find_spec("s3fs") is None:
            return None
        from .s3fs_engine import S3Backend

        return S3Backend(self.config, environ=self.environ).server_copy(source)

    @functools.cached_property
    def _bucket_store(self) -> Any:
        """A store at the bucket's root, with this one's settings: copies between prefixes."""
        from obstore.store import S3Store

        settings, client = self._settings()
        return S3Store(
            self._loc.bucket, client_options=client, retry_config=self._retry_config(), **settings
        )

    def md5(self, key: str, stat: Stat) -> str:
        return etag_md5(stat) or super().md5(key, stat)

    metadata = True

    def fix_metadata(self, key: str, *, dry_run: bool = False) -> MetadataFix:
        """Through s3fs: obstore copies objects but cannot replace their metadata, so a
        copy onto itself would change nothing (the default engine's client does it)."""
        return self._metadata_backend().fix_metadata(key, dry_run=dry_run)

    @functools.cached_property
    def _s3fs(self) -> Backend:
        from .s3fs_engine import S3Backend

        return S3Backend(self.config, environ=self.environ)

    def _metadata_backend(self) -> Backend:
        if importlib.util.find_spec("s3fs") is None:
            # Updating stored metadata needs it even on this engine.
            raise MissingBackendError(self.config.scheme, "s3fs", "s3")
        return self._s3fs

    def explain(self, exc: OSError) -> OSError:
        return explain(exc, location(self.config))

    def public_read_fix(self) -> str:
        return public_read_fix(location(self.config), upload_settings(self.config).get("ACL"))

    @_translating
    def delete(self, key: str) -> None:
        import obstore

        self._head(key)  # S3 deletes are silent about missing keys; the contract is not
        obstore.delete(self.store, key)

    @_translating
    def stat(self, key: str) -> Stat:
        import obstore

        # A head-only GET: one HEAD request, like obstore.head, but its result carries the
        # stored attributes (Content-Type), which obstore.head's metadata lacks.
        try:
            result = obstore.get(self.store, key, options={"head": True})
        except FileNotFoundError:
            raise FileNotFoundError(key) from None
        content_type = result.attributes.get("Content-Type")
        return _stat(key, result.meta, str(content_type) if content_type else None)

    def _head(self, key: str) -> Mapping[str, Any]:
        import obstore

        try:
            meta: Mapping[str, Any] = obstore.head(self.store, key)
        except FileNotFoundError:
            raise FileNotFoundError(key) from None
        return meta

    def list(self, prefix: str) -> Iterator[str]:
        return (key for key, _ in self.scan(prefix))

    def scan(self, prefix: str) -> Iterator[tuple[str, Stat]]:
        # Amazon S3 lists in key order, but not every S3 server does: SeaweedFS walks its
        # directories ("a/x" before "a-b"). The listing is sorted here, as s3fs's is, so
        # that a sync can merge it with the other side's.
        try:
            with _obstore_errors(prefix):
                found = self._pages(prefix)
        except _Unlistable as exc:
            # object_store refuses a whole listing page that holds a name it cannot parse
            # (S3 takes "a//b", "/a", "a/./b"); s3fs lists every name as it is, and the
            # storage then skips those that are not keys, so the valid keys still show.
            if importlib.util.find_spec("s3fs") is None:
                raise OSError(
                    errno.EIO,
                    f"{exc}: obstore cannot list it; pip install 'storage-dsn[s3]' and the "
                    "listing goes through s3fs",
                ) from None
            log.info("obstore cannot list %r (%s): listing through s3fs", prefix, exc)
            yield from self._lister().scan(prefix)
            return
        for key in sorted(found):
            yield key, _stat(key, found[key])

    def _pages(self, prefix: str) -> dict[str, Mapping[str, Any]]:
        import obstore
        from obstore.exceptions import InvalidPathError

        directory = prefix.rpartition("/")[0]
        found: dict[str, Mapping[str, Any]] = {}
        try:
            for batch in obstore.list(self.store, prefix=directory or None):
                for meta in batch:
                    key = meta["path"]
                    # object_store lists a folder marker ("photos/", left by other tools)
                    # as "photos", an empty object no GET can read: only empty entries can
                    # be markers, and those are asked about. A marker beside an object of
                    # the same name lists after it: the first entry is the object.
                    if (
                        key not in found
                        and key.startswith(prefix)
                        and is_listable(key)
                        and (meta["size"] or self.exists(key))
                    ):
                        found[key] = meta
        except InvalidPathError as exc:
            raise _Unlistable(str(exc).splitlines()[0][:200]) from None
        return found

    def _lister(self) -> Backend:
        """The s3fs engine on the same storage, for listings obstore refuses."""
        return self._s3fs

    @_translating
    def read_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        import obstore

        async def one(key: str) -> bytes:
            try:
                response = await obstore.get_async(self.store, key)
            except FileNotFoundError:
                raise FileNotFoundError(key) from None
            return bytes(await response.bytes_async())

        return dict(zip(keys, _run(_bounded([one(k) for k in keys])), strict=True))

    @_translating
    def write_many(self, items: Mapping[str, bytes]) -> None:
        import obstore

        async def one(key: str, data: bytes) -> None:
            await obstore.put_async(
                self.store, key, bytes(data), attributes=self._attributes(key), use_multipart=False
            )

        _run(_bounded([one(k, v) for k, v in items.items()]))


class _StreamReader(io.RawIOBase):
    """A seekable raw file over one streamed GET.

    Reading front to back is one request, streamed (a reader that issued a ranged GET per
    buffer refill was 28x slower on 32 MiB); a seek elsewhere starts a new GET there.
    """

    def __init__(self, store: Any, key: str, size: int) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._size = size
        self._pos = 0
        self._chunks: Iterator[Any] | None = None
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _obstore_errors(self._key):
            return self._readinto(buffer)

    def _readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        if not self._pending:
            if self._chunks is None:
                import obstore

                options: Any = {"range": {"offset": self._pos}} if self._pos else None
                result = obstore.get(self._store, self._key, options=options)
                self._chunks = iter(result.stream(min_chunk_size=STREAM_CHUNK))
            chunk = next(self._chunks, None)
            if chunk is None:  # the body ended before the object did
                raise short_read(self._key, self._size, self._pos)
            self._pending = memoryview(bytes(chunk))
        n = min(len(buffer), len(self._pending))
        memoryview(buffer)[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {
            io.SEEK_SET: offset,
            io.SEEK_CUR: self._pos + offset,
            io.SEEK_END: self._size + offset,
        }[whence]
        if target < 0:
            raise ValueError("negative seek position")
        if target != self._pos:
            self._pos, self._chunks, self._pending = target, None, memoryview(b"")
        return self._pos

    def tell(self) -> int:
        return self._pos


def _stat(key: str, meta: Mapping[str, Any], content_type: str | None = None) -> Stat:
    modified = meta.get("last_modified")
    etag = meta.get("e_tag")
    return Stat(
        size=int(meta["size"]),
        mtime=modified.timestamp() if modified is not None else None,
        etag=str(etag).strip('"') if etag else None,
        content_type=content_type or guess_type(key),
    )


async def _bounded(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    import asyncio

    limit = asyncio.Semaphore(DEFAULT_CONCURRENCY)

    async def one(coro: Coroutine[Any, Any, T]) -> T:
        async with limit:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


_loop: asyncio.AbstractEventLoop | None = None
_loop_thread: threading.Thread | None = None
_loop_lock = threading.Lock()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private event loop thread (works from inside a running loop too)."""
    return _submit(coro).result()


def _submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Start ``coro`` on the private event loop thread; its future holds the result."""
    import asyncio  # here: a small object's read or write never needs the loop

    global _loop, _loop_thread
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            _loop_thread = threading.Thread(
                target=_loop.run_forever, name="storage-dsn-obstore", daemon=True
            )
            _loop_thread.start()
            atexit.register(_stop_loop)
    return asyncio.run_coroutine_threadsafe(coro, _loop)


def _stop_loop() -> None:
    """Stop the private loop and wait for its thread, before the interpreter finalizes.

    obstore's async calls complete on Rust threads that call back into this loop; with
    the loop's thread still alive while Python shuts down, such a callback can meet a
    half-finalized interpreter, which aborts the process (SIGABRT after all the work was
    done). An orderly stop leaves nothing for them to call.
    """
    global _loop, _loop_thread
    with _loop_lock:
        loop, thread = _loop, _loop_thread
        _loop = _loop_thread = None
    if loop is None or thread is None:
        return
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    if not thread.is_alive():
        loop.close()


@contextmanager
def _create_mode(key: str, exclusive: bool) -> Iterator[Literal["create", "overwrite"]]:
    """obstore's put mode; an existing object under "create" becomes FileExistsError."""
    if not exclusive:
        yield "overwrite"
        return
    from obstore.exceptions import AlreadyExistsError, PreconditionError

    try:
        yield "create"
    except (AlreadyExistsError, PreconditionError):
        raise FileExistsError(key) from None
