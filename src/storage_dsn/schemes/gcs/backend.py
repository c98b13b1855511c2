"""The backend of GCS storages: gcsfs, with content types, conditional creates and errors
that name the key and hold no secret."""

from __future__ import annotations

import base64
import binascii
import errno
import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import quote, urlsplit

from ...backend import AtomicWriter, BufferedAtomicWriter, Stat, Timeouts, file_path, guess_type
from ...dsn import secret_values
from ..generic import FsspecBackend
from .errors import Reader, oserror
from .parse import ANONYMOUS

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["GCSBackend"]

T = TypeVar("T")


def _translating(method: Callable[..., T]) -> Callable[..., T]:
    """A backend method whose first argument is a key (or prefix), with gcsfs's errors
    translated (see :meth:`GCSBackend.guarded`)."""

    @functools.wraps(method)
    def wrapper(self: GCSBackend, key: str, *args: Any, **kwargs: Any) -> T:
        return self.guarded(key, method, self, key, *args, **kwargs)

    return wrapper


class GCSBackend(FsspecBackend):
    """gcsfs with content types on every upload, conditional creates, one-line OSErrors.

    Whole-object uploads are one request (a multipart upload) up to gcsfs's chunk size,
    resumable beyond; either way the object appears whole or not at all.
    """

    @functools.cached_property
    def secrets(self) -> list[str]:
        """The credentials this storage holds, as text to mask in error messages."""
        found = secret_values(self.config)
        try:
            token = _json_token(self.config.options.get("token"))
        except ValueError:
            token = None
        if isinstance(token, dict):
            found += [str(v) for v in token.values() if isinstance(v, str) and len(v) >= 6]
        found += [quote(s, safe="") for s in found]
        return sorted({s for s in found if s}, key=len, reverse=True)

    def guarded(self, key: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with any error raised as :func:`~.errors.oserror` makes it.

        The translation is raised outside the ``except`` block, so the original, whose
        text may hold a secret, is not even its ``__context__``.
        """
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = oserror(key, exc, self.secrets)
        raise error

    def storage_options(self) -> dict[str, Any]:
        """gcsfs's arguments: a JSON ``option.token`` as the dict gcsfs takes for a key,
        and ``STORAGE_EMULATOR_HOST`` from the storage's environment as ``endpoint_url``."""
        options = super().storage_options()
        token = _json_token(options.get("token"))
        if token is not None:
            options["token"] = token
        elif self.config.settings.get("anonymous"):
            options["token"] = ANONYMOUS
        emulator = self.environ.get("STORAGE_EMULATOR_HOST", "")
        if "endpoint_url" not in options and emulator not in ("", "default"):
            # Google's clients (gcsfs too, from os.environ) send every request there;
            # named here, it also picks the filesystem class (_filesystem_class).
            scheme = "" if "://" in emulator else "http://"
            options["endpoint_url"] = f"{scheme}{emulator}"
        return options

    def _make_filesystem(self) -> AbstractFileSystem:
        try:
            options = self.storage_options()
            options.setdefault("use_listings_cache", False)  # see FsspecBackend
            options.update(_timeout_options(Timeouts.of(self.config), options))
            return _retrying(_filesystem_class(options.get("endpoint_url")))(**options)
        except TypeError:  # an option gcsfs does not take: the message names no value
            raise
        except Exception as exc:
            # Building the filesystem loads the credentials: a key that does not parse, a
            # file that is not one, a raw token that Google's tokeninfo endpoint cannot
            # check (requests' message then holds the token). Say which, not what.
            error = PermissionError(
                errno.EACCES,
                "could not load the Google credentials from option.token or the "
                f"environment ({type(exc).__name__})",
            )
        raise error

    # -- reads --

    @_translating
    def open_read(self, key: str) -> BinaryIO:
        f = self.base.open(self.path(key), "rb")
        return Reader(f, functools.partial(self.guarded, key))  # type: ignore[return-value]

    @_translating
    def read_bytes(self, key: str) -> bytes:
        return super().read_bytes(key)

    @_translating
    def stat(self, key: str) -> Stat:
        return super().stat(key)

    @_translating
    def exists(self, key: str) -> bool:
        return super().exists(key)

    @_translating
    def list(self, prefix: str) -> Iterator[str]:
        return super().list(prefix)  # lists now: errors come from this call

    @_translating
    def scan(self, prefix: str) -> Iterator[tuple[str, Stat]]:
        return super().scan(prefix)

    @_translating
    def md5(self, key: str, stat: Stat) -> str:
        """GCS keeps each object's MD5 (``md5Hash``, base64) unless it was composed from
        parts: one metadata request instead of reading the object."""
        encoded = self.base.info(self.path(key)).get("md5Hash")
        if encoded:
            try:
                return base64.b64decode(encoded, validate=True).hex()
            except (binascii.Error, ValueError):
                pass
        return super().md5(key, stat)

    def read_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        fs: Any = self.guarded("", lambda: self.base)
        results = self._gather([fs._cat_file(self.path(key)) for key in keys])
        out: dict[str, bytes] = {}
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                raise oserror(key, result, self.secrets) from None
            out[key] = result
        return out

    # -- writes --

    def open_write(self, key: str, *, exclusive: bool = False) -> AtomicWriter:
        path = self.path(key)
        return BufferedAtomicWriter(
            commit_bytes=lambda data: self.guarded(
                key, self._put_bytes, path, data, exclusive=exclusive
            ),
            commit_file=lambda local: self.guarded(
                key, self._put_file, local, path, exclusive=exclusive
            ),
        )

    @_translating
    def write_bytes(self, key: str, data: bytes) -> None:
        self._put_bytes(self.path(key), bytes(data))

    @_translating
    def save(self, key: str, fileobj: BinaryIO, *, exclusive: bool = False) -> None:
        local = file_path(fileobj)
        if local is None:
            super().save(key, fileobj, exclusive=exclusive)
        else:  # no copy: gcsfs uploads from the path
            self._put_file(local, self.path(key), exclusive=exclusive)

    def write_many(self, items: Mapping[str, bytes]) -> None:
        self.guarded("", lambda: self.base)
        results = self._gather(
            [self._put_bytes_async(self.path(key), bytes(data)) for key, data in items.items()]
        )
        for key, result in zip(items, results, strict=True):
            if isinstance(result, BaseException):
                raise oserror(key, result, self.secrets) from None

    # ``exclusive`` is GCS's precondition ifGenerationMatch=0 (only if no live object has
    # the name), which gcsfs sends for mode="create" on single-request and resumable
    # uploads alike; the 412 that refuses it reaches us as FileExistsError.

    def _put_bytes(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        self.base.pipe_file(path, data, mode=_mode(exclusive), content_type=_content_type(path))

    def _put_file(self, local: str, path: str, *, exclusive: bool = False) -> None:
        self.base.put_file(local, path, mode=_mode(exclusive), content_type=_content_type(path))

    async def _put_bytes_async(self, path: str, data: bytes) -> None:
        fs: Any = self.base
        await fs._pipe_file(path, data, content_type=_content_type(path))

    @_translating
    def delete(self, key: str) -> None:
        self.base.rm_file(self.path(key))  # a missing object is a 404: FileNotFoundError


def _mode(exclusive: bool) -> str:
    return "create" if exclusive else "overwrite"


def _content_type(path: str) -> str:
    return guess_type(path) or "application/octet-stream"


def _json_token(token: object) -> object:
    """``option.token`` holding a service-account or user key as JSON, as a dict; any
    other value unchanged, ``None`` when there is no token. :class:`ValueError` for
    JSON that is not an object (gcsfs would send it to Google as a raw access token)."""
    if isinstance(token, str) and token.lstrip().startswith("{"):
        parsed = json.loads(token)
        if not isinstance(parsed, dict):
            raise ValueError("option.token is not a JSON object")
        return parsed
    return token


def _filesystem_class(endpoint: str | None) -> Callable[..., AbstractFileSystem]:
    """gcsfs's filesystem class for ``endpoint``.

    Unless ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` was set before gcsfs was imported,
    ``gcsfs.GCSFileSystem`` (what fsspec's ``gcs`` protocol names) is its extended class,
    which asks Google's Storage Control API, over gRPC at the same endpoint, how each
    bucket is laid out. An emulator speaks only the JSON API, so every such probe waits
    out a minute-long retry and its answer is not kept. The core class is the one gcsfs
    picks when the variable is false: named directly, nobody has to set the variable
    (which only counts at import time, for the whole process).
    """
    if endpoint and not _is_google(endpoint):
        from gcsfs.core import GCSFileSystem

        plain: Callable[..., AbstractFileSystem] = GCSFileSystem
        return plain
    import fsspec

    cls: Callable[..., AbstractFileSystem] = fsspec.get_filesystem_class("gcs")
    return cls


def _timeout_options(timeouts: Timeouts, options: Mapping[str, Any]) -> dict[str, Any]:
    """gcsfs's settings for ``timeouts``, where ``option.*`` has not set them.

    ``requests_timeout`` is what gcsfs gives aiohttp for each request: per connection and
    per read, never a total (a large object may take as long as it takes, as long as
    bytes keep coming). ``retry_timeout`` bounds the retries of the Storage Control API
    (gRPC), which gcsfs's extended class asks on Google's endpoint; the core class
    ignores it.
    """
    import aiohttp

    found: dict[str, Any] = {
        "requests_timeout": aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.read
        ),
        "retries": timeouts.retries,
        "retry_timeout": (timeouts.retries + 1) * (timeouts.connect + timeouts.read),
    }
    return {name: value for name, value in found.items() if name not in options}


@functools.cache
def _retrying(cls: Callable[..., AbstractFileSystem]) -> Callable[..., AbstractFileSystem]:
    """``cls`` retrying each request ``retries`` times (keyword argument), with gcsfs's
    own retry loop and backoff (``gcsfs.retry.retry_request``: 5xx, 408, 429, resets and
    timeouts). gcsfs fixes the count at six attempts when its class is defined, which
    with backoff is over a minute of waiting for a server that does not answer.
    """
    from gcsfs.core import GCSFileSystem
    from gcsfs.retry import retry_request

    undecorated = GCSFileSystem._request.__wrapped__
    attempts = functools.cache(lambda count: retry_request(undecorated, count))

    class RetryingGCSFileSystem(cls):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, retries: int | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if retries is not None:
                self.retries = retries + 1  # gcsfs counts attempts

        async def _request(self, *args: Any, **kwargs: Any) -> Any:
            return await attempts(self.retries)(self, *args, **kwargs)

    return RetryingGCSFileSystem


def _is_google(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    return host == "googleapis.com" or host.endswith(".googleapis.com")
