"""A WSGI media server: the body of the Flask ``media.serve`` view, usable on its own.

It answers ``GET`` and ``HEAD`` for one key of a storage with a strong ETag and
Last-Modified, ``If-Match``/``If-Unmodified-Since`` (412), ``If-None-Match``/
``If-Modified-Since`` (304), a single byte ``Range`` (206, 416) with ``If-Range``, and
streams the file through ``wsgi.file_wrapper`` (``sendfile`` under gunicorn). Remote
storages answer 302 to the key's public (or presigned) URL instead. S3's
``response-content-disposition`` and ``response-content-type`` query parameters, as
:meth:`Storage.url <storage_dsn.Storage.url>` writes them, override the response's headers
(or travel on with the redirect); any other value of them is a 400.

``PUT`` and ``POST`` are 405, unless an :class:`UploadReceiver` takes them (direct uploads
to a local storage: :mod:`storage_dsn.uploads`).

Uploads are untrusted: every response carries ``X-Content-Type-Options: nosniff`` and
``Content-Security-Policy: sandbox``, so an uploaded HTML or SVG file cannot run script in
the site's origin. Anything that is not a plain, visible file inside the root (``..`` in
any encoding, absolute paths, drive letters, backslashes, NUL, dot-files, directories,
over-long names, symlinks leading outside) is a 404.
"""

from __future__ import annotations

import mimetypes
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from werkzeug.http import parse_date, parse_range_header

from .errors import InvalidKeyError, NoPublicURLError, StorageDSNError
from .keys import quote_key, validate_key
from .urls import check_content_type, content_disposition

if TYPE_CHECKING:
    from .backend import Backend
    from .storage import Storage

__all__ = ["MediaServer", "UploadReceiver", "mount_prefix", "servable_key"]

StartResponse = Callable[..., Any]
Headers = list[tuple[str, str]]
CHUNK = 64 * 1024
SECURITY_HEADERS: Headers = [
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "sandbox"),
]
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "image/svg+xml")
_DISPOSITION = "response-content-disposition"
_TYPE = "response-content-type"
# What urls.content_disposition() writes; the name is then checked by writing it again.
_ATTACHMENT = re.compile(r"attachment; filename=\"[^\"]*\"; filename\*=UTF-8''([^\s;\"]+)")


class UploadReceiver(Protocol):
    """Takes direct uploads for a :class:`MediaServer` (see :mod:`storage_dsn.uploads`)."""

    def receive(
        self, environ: dict[str, Any], start_response: StartResponse, key: str
    ) -> Iterable[bytes] | None:
        """Answer an upload request for ``key``; ``None`` when the request is none."""


def servable_key(key: str) -> str | None:
    """``key`` if it may be served over HTTP, else ``None``.

    On top of :func:`validate_key`'s rules, no segment may start with ``.``: dot-files and
    dot-directories (``.git``, ``.env``, our own temporary files) are never served.
    """
    try:
        validate_key(key)
    except InvalidKeyError:
        return None
    if key[0] == "." or "/." in key:
        return None
    return key


def mount_prefix(public_url: str) -> str:
    """The path a public URL's files are served under, with slashes at both ends
    (``/media/`` for ``/media`` or ``https://example.com/media/``; ``/`` for the root)."""
    path = urlsplit(public_url).path.strip("/")
    return f"/{path}/" if path else "/"


class _File:
    """What a response needs to know about the file it sends."""

    __slots__ = ("content_type", "etag", "fd", "last_modified", "mtime", "opener", "size")

    def __init__(
        self,
        size: int,
        mtime: float,
        etag: str,
        content_type: str,
        opener: Callable[[], BinaryIO],
        fd: int | None = None,
    ) -> None:
        #: An open descriptor the opener will use; closed by _discard when no body is sent.
        self.fd = fd
        self.size = size
        self.mtime = int(mtime)
        self.etag = etag
        self.last_modified = http_date(self.mtime)
        self.content_type = content_type
        self.opener = opener


class MediaServer:
    """Serves the keys of one storage over WSGI; built once per app, shared by requests."""

    def __init__(
        self,
        storage: Storage,
        *,
        serve: bool,
        redirect: bool = True,
        max_age: int = 0,
        x_accel: str | None = None,
        uploads: UploadReceiver | None = None,
    ) -> None:
        self.storage = storage
        self.serve = serve
        #: Takes PUT and POST uploads; without one, they are 405.
        self.uploads = uploads
        self.redirect = redirect
        self.x_accel = x_accel.rstrip("/") + "/" if x_accel else None
        cache = f"public, max-age={max_age}" if max_age > 0 else "no-cache"
        # Every header that does not depend on the file, built once.
        self._static: Headers = [
            ("Cache-Control", cache),
            ("Accept-Ranges", "bytes"),
            *SECURITY_HEADERS,
        ]
        self._content_types: dict[str, str] = {}
        # Backends whose keys are local files are served from descriptors (sendfile).
        self._local: Backend | None = storage.backend if storage.backend.files else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve the key named by ``PATH_INFO`` (for mounting under a prefix)."""
        return self.respond(environ, start_response, _path_info(environ).lstrip("/"))

    def respond(
        self, environ: dict[str, Any], start_response: StartResponse, key: str
    ) -> Iterable[bytes]:
        """Answer a request for ``key``."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            answer = self.uploads.receive(environ, start_response, key) if self.uploads else None
            if answer is None:
                return _plain(start_response, "405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return answer
        safe = servable_key(key)
        if safe is None:
            return _plain(start_response, "404 Not Found")
        try:
            overrides = response_overrides(environ)
        except StorageDSNError as exc:
            return _plain(start_response, "400 Bad Request", reason=str(exc))
        if not self.serve:
            return self._redirect(start_response, safe, overrides)
        file = self._local_file(safe) if self._local is not None else self._storage_file(safe)
        if file is None:
            return _plain(start_response, "404 Not Found")
        return self._send(environ, start_response, method, safe, file, overrides)

    # -- finding the file -------------------------------------------------------------

    def _local_file(self, key: str) -> _File | None:
        assert self._local is not None
        try:
            fd = self._local.open_file(key)  # a regular file inside the root, or nothing
        except (OSError, ValueError):  # missing, outside the root, too long, a FIFO...
            return None
        st = os.fstat(fd)  # of the file we hold open: no race with a rename in between
        return _File(
            size=st.st_size,
            mtime=st.st_mtime,
            etag=f'"{st.st_size:x}-{st.st_mtime_ns:x}"',
            content_type=self._content_type(key),
            opener=lambda: os.fdopen(fd, "rb"),
            fd=fd,
        )

    def _storage_file(self, key: str) -> _File | None:
        try:
            st = self.storage.stat(key)
        except (FileNotFoundError, InvalidKeyError, OSError):
            return None
        mtime = st.mtime or 0.0
        etag = f'"{st.etag}"' if st.etag else f'"{st.size:x}-{int(mtime * 1e9):x}"'
        return _File(
            size=st.size,
            mtime=mtime,
            etag=etag,
            content_type=self._content_type(key),
            opener=lambda: cast("BinaryIO", self.storage.open(key, "rb")),
        )

    def _content_type(self, key: str) -> str:
        ext = os.path.splitext(key)[1].lower()
        found = self._content_types.get(ext)
        if found is None:
            found = mimetypes.guess_type("x" + ext, strict=False)[0] or "application/octet-stream"
            if found.startswith(_TEXT_TYPES):
                found += "; charset=utf-8"
            self._content_types[ext] = found
        return found

    # -- answering ---------------------------------------------------------------------

    def _send(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        key: str,
        file: _File,
        overrides: Overrides,
    ) -> Iterable[bytes]:
        headers: Headers = [
            ("ETag", file.etag),
            ("Last-Modified", file.last_modified),
            *self._static,
        ]
        status = _preconditions(environ, file)
        if status is not None:
            _discard(file)
            if status.startswith("304"):
                return _empty(start_response, status, headers)
            return _plain(start_response, status)
        start, stop = 0, file.size
        status = "200 OK"
        byte_range = _requested_range(environ, file)
        if byte_range == "unsatisfiable":
            _discard(file)
            return _plain(
                start_response,
                "416 Range Not Satisfiable",
                [("Content-Range", f"bytes */{file.size}")],
            )
        if isinstance(byte_range, tuple):
            start, stop = byte_range
            status = "206 Partial Content"
            headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{file.size}"))
        download_name, content_type = overrides
        headers.append(("Content-Type", content_type or file.content_type))
        if download_name is not None:
            headers.append(("Content-Disposition", content_disposition(download_name)))
        if self.x_accel is not None:
            _discard(file)
            headers.append(("X-Accel-Redirect", self.x_accel + quote_key(key)))
            start_response(status, headers)
            return []
        headers.append(("Content-Length", str(stop - start)))
        if method == "HEAD":
            _discard(file)
            start_response(status, headers)
            return []
        f = file.opener()
        start_response(status, headers)
        if status.startswith("206"):
            f.seek(start)
            return _RangeBody(f, stop - start)
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None and self._local is not None:
            return wrapper(f, CHUNK)  # type: ignore[no-any-return]
        return _RangeBody(f, stop)

    def _redirect(
        self, start_response: StartResponse, key: str, overrides: Overrides
    ) -> Iterable[bytes]:
        if not self.redirect:
            return _plain(start_response, "404 Not Found")
        download_name, content_type = overrides
        try:
            location = self.storage.url(key, download_name=download_name, content_type=content_type)
        except (NoPublicURLError, InvalidKeyError):
            return _plain(start_response, "404 Not Found")
        # A presigned URL expires: a cached redirect to it would too. Overrides are signed.
        signed = self.storage.config.signed_urls or any(overrides)
        cache = "no-store" if signed else self._static[0][1]
        headers = [("Location", location), ("Cache-Control", cache), *SECURITY_HEADERS]
        return _empty(start_response, "302 Found", headers)


Overrides = tuple["str | None", "str | None"]


def response_overrides(environ: dict[str, Any]) -> Overrides:
    """``(download_name, content_type)`` from S3's ``response-content-disposition`` and
    ``response-content-type`` query parameters, as :meth:`Storage.url
    <storage_dsn.Storage.url>` writes them; :class:`StorageDSNError` for any other value.

    A disposition is honoured only in the exact form :func:`content_disposition` gives
    for the name it carries, so no header can be smuggled through it.
    """
    query = environ.get("QUERY_STRING", "")
    if "response-" not in query:
        return None, None
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict", max_num_fields=32)
    except ValueError:
        raise StorageDSNError("the query is not valid UTF-8") from None
    found = dict(pairs)
    if len(found) != len(pairs):
        raise StorageDSNError("a query parameter is repeated")
    content_type = found.get(_TYPE)
    if content_type is not None:
        check_content_type(content_type)
    disposition = found.get(_DISPOSITION)
    if disposition is None:
        return None, content_type
    match = _ATTACHMENT.fullmatch(disposition)
    try:
        name = unquote(match.group(1), errors="strict") if match else ""
    except UnicodeDecodeError:
        name = ""
    if not name or content_disposition(name) != disposition:
        raise StorageDSNError(f"{_DISPOSITION} must be attachment; filename=...; filename*=...")
    return name, content_type


class _RangeBody:
    """Yields ``length`` bytes from ``f``'s position, then closes it."""

    def __init__(self, f: BinaryIO, length: int) -> None:
        self._f = f
        self._left = length

    def __iter__(self) -> Iterator[bytes]:
        while self._left > 0:
            chunk = self._f.read(min(CHUNK, self._left))
            if not chunk:
                break
            self._left -= len(chunk)
            yield chunk

    def close(self) -> None:
        self._f.close()


def _preconditions(environ: dict[str, Any], file: _File) -> str | None:
    """The status RFC 9110 section 13.2.2 gives for the request's preconditions, or None."""
    if_match = environ.get("HTTP_IF_MATCH")
    if if_match is not None:
        if not _etag_matches(if_match, file.etag, weak=False):
            return "412 Precondition Failed"
    else:
        since = _date(environ.get("HTTP_IF_UNMODIFIED_SINCE"))
        if since is not None and file.mtime > since:
            return "412 Precondition Failed"
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        return "304 Not Modified" if _etag_matches(if_none_match, file.etag, weak=True) else None
    since = _date(environ.get("HTTP_IF_MODIFIED_SINCE"))
    if since is not None and file.mtime <= since:
        return "304 Not Modified"
    return None


def _requested_range(environ: dict[str, Any], file: _File) -> tuple[int, int] | str | None:
    """``(start, stop)`` for a satisfiable single range, "unsatisfiable", or None (send all)."""
    header = environ.get("HTTP_RANGE")
    if header is None or environ.get("REQUEST_METHOD") != "GET":
        return None
    if_range = environ.get("HTTP_IF_RANGE")
    if if_range is not None:
        if if_range.strip().startswith(('"', "W/")):
            if not _etag_matches(if_range, file.etag, weak=False):
                return None
        elif _date(if_range) != file.mtime:
            return None
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None  # malformed or multi-range: the whole file, as RFC 9110 allows
    start, stop = parsed.ranges[0]
    if start < 0:  # bytes=-N: the last N bytes, all of them when N exceeds the size
        start, stop = max(0, file.size + start), file.size
    else:
        stop = file.size if stop is None else min(stop, file.size)
    if start >= stop:
        return "unsatisfiable"
    return start, stop


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: int) -> str:
    """An IMF-fixdate (``Tue, 24 Nov 2026 16:46:54 GMT``), whatever the locale."""
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    header = header.strip()
    if header == "*":
        return True
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            if not weak:
                continue
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _date(value: str | None) -> int | None:
    if not value:
        return None
    parsed = parse_date(value)
    return int(parsed.timestamp()) if parsed is not None else None


def _discard(file: _File) -> None:
    if file.fd is not None:
        os.close(file.fd)
        file.fd = None


def _plain(
    start_response: StartResponse,
    status: str,
    extra: Headers | None = None,
    *,
    reason: str | None = None,
) -> list[bytes]:
    body = (f"{status}\n{reason}\n" if reason else f"{status}\n").encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *SECURITY_HEADERS,
        *(extra or ()),
    ]
    start_response(status, headers)
    return [body]


def _empty(start_response: StartResponse, status: str, headers: Headers) -> list[bytes]:
    start_response(status, headers)
    return []


def _path_info(environ: dict[str, Any]) -> str:
    # PEP 3333: PATH_INFO holds the percent-decoded bytes as latin-1; keys are UTF-8.
    raw: str = environ.get("PATH_INFO", "")
    return raw.encode("latin-1").decode("utf-8", "replace")
