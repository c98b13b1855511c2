"""Direct uploads to a storage the web app serves itself, shaped like S3's.

A browser page written against S3 sends a presigned ``PUT`` (the body is the file) or a
multipart ``POST`` of an :class:`~storage_dsn.UploadForm` (its fields, then ``file``).
:class:`LocalUploads` gives ``file`` and ``memory`` storages the same two doors on the
media server, so the page runs unchanged in development:

* :meth:`LocalUploads.upload_url` is ``<media path><key>?policy=<token>``;
* :meth:`LocalUploads.upload_form` posts to the media path with the fields ``key``
  (``prefix${filename}`` for a prefix), ``Content-Type`` (for an exact type) and
  ``policy``.

The token is a grant signed with the app's secret key (itsdangerous, HMAC-SHA256): the
method, the key or prefix, the content type (exact, or a prefix ending in ``/``), the
size limit and an absolute expiry, as in an S3 POST policy. Nothing is stored: the token
is the whole state. The receiver refuses what S3 refuses, with these statuses: 403 for a
tampered, expired or missing signature, a key outside the grant, a type the grant does not
allow, or a form field the grant does not name (``x-ignore-*`` excepted); 400 for an
invalid key or file name, a malformed body or a short one; 411 without a length; 413 past
``max_size``, counted while streaming. The file goes through :meth:`Storage.save
<storage_dsn.Storage.save>` or :meth:`Storage.open <storage_dsn.Storage.open>`: the object
appears whole or not at all, and of concurrent uploads to one key one wins whole.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, Field, File, MultipartDecoder

from .backend import guess_type
from .errors import InvalidKeyError
from .keys import quote_key, validate_key, validate_prefix
from .serving import CHUNK, SECURITY_HEADERS, StartResponse, _plain, servable_key
from .urls import Clock, UploadForm, check_content_type

if TYPE_CHECKING:
    from werkzeug.sansio.multipart import Event

    from .storage import Storage

__all__ = ["MAX_UPLOAD_NAME", "UPLOAD_PARAM", "LocalUploads", "SecretKeys"]

#: ``secret_keys()``: the keys to verify with, oldest first; the last one signs.
SecretKeys = Callable[[], Sequence["str | bytes"]]
#: The query parameter of a PUT URL and the form field that carry the signed grant.
UPLOAD_PARAM = "policy"
#: Longest file name an upload keeps, in UTF-8 bytes: far below the 255 a file may have.
MAX_UPLOAD_NAME = 128
#: Longest lifetime of a grant: a week, as for S3's presigned URLs.
MAX_EXPIRES = 7 * 24 * 3600
#: The form fields before the file may hold this many bytes (S3's limit is 20 KB).
MAX_FIELDS = 20 * 1024
#: After a refusal, up to this much of the rest of the body is read and dropped, so the
#: client, still sending, reads the answer instead of a reset connection.
DRAIN = 1024 * 1024
_SALT = "storage-dsn.upload"
_FILENAME = "${filename}"
_TOO_LARGE = ("413 Content Too Large", "the file is larger than the policy allows")


class _Refused(Exception):
    """An upload the receiver turns down: the status and the reason for the body."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _TooLarge(OSError):
    """The body passed the grant's ``max_size`` (an OSError: Storage lets it through)."""


class _Incomplete(OSError):
    """The client sent less than its ``Content-Length``."""


class _Grant:
    """What a token allows: one method, a key or a prefix, a type, a size, until when."""

    __slots__ = ("content_type", "expires_at", "key", "max_size", "method")

    def __init__(
        self,
        method: str,
        key: str,
        content_type: str | None,
        max_size: int | None,
        expires_at: int,
    ) -> None:
        self.method = method
        self.key = key
        self.content_type = content_type
        self.max_size = max_size
        self.expires_at = expires_at

    def dump(self) -> list[Any]:
        return [self.method, self.key, self.content_type, self.max_size, self.expires_at]

    def covers(self, key: str) -> bool:
        """Whether ``key`` is the granted key, or lies under the granted prefix."""
        if self.key.endswith("/"):
            return key.startswith(self.key) and len(key) > len(self.key)
        return key == self.key

    def allows_type(self, content_type: str) -> bool:
        """Whether ``content_type`` (parameters ignored) is the granted type or under it."""
        granted = self.content_type
        assert granted is not None
        base = content_type.partition(";")[0].strip().lower()
        if granted.endswith("/"):
            return base.startswith(granted.lower())
        return base == granted.partition(";")[0].strip().lower()


class LocalUploads:
    """Signs upload grants for a storage served at ``base``, and receives the uploads.

    ``secret_keys`` is called on each use, so a key set after the app was configured (or
    rotated, the old one kept among the fallbacks) counts. ``clock`` gives the time grants
    are signed and checked at.
    """

    def __init__(
        self, storage: Storage, base: str, secret_keys: SecretKeys, *, clock: Clock = time.time
    ) -> None:
        self.storage = storage
        #: The path uploads go to, with slashes at both ends (``/media/``).
        self.base = base
        self.secret_keys = secret_keys
        self.clock = clock

    def __repr__(self) -> str:
        return f"LocalUploads({self.storage!r}, {self.base!r})"

    # -- signing ----------------------------------------------------------------------

    def upload_url(
        self,
        key: str,
        *,
        expires: int | None = None,
        content_type: str | None = None,
        max_size: int | None = None,
    ) -> str:
        """A URL a browser may ``PUT`` ``key`` to, with the body as the file."""
        self._check_key(key)
        if content_type is not None:
            check_content_type(content_type)
        token = self._sign(_Grant("PUT", key, content_type, _size(max_size), self._at(expires)))
        return f"{self.base}{quote_key(key)}?{UPLOAD_PARAM}={token}"

    def upload_form(
        self,
        key: str,
        *,
        expires: int | None = None,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> UploadForm:
        """An :class:`~storage_dsn.UploadForm` for ``key``, or for any name under it when
        it ends in ``/``; ``content_type`` ending in ``/`` or ``/*`` is a prefix."""
        if key.endswith("/"):
            validate_prefix(key)
            if servable_key(key + "x") is None:
                raise InvalidKeyError(f"{key!r} is not a prefix this app could serve")
        else:
            self._check_key(key)
        content_type = _granted_type(content_type)
        grant = _Grant("POST", key, content_type, _size(max_size), self._at(expires))
        fields = {"key": key + _FILENAME if key.endswith("/") else key}
        if content_type is not None and not content_type.endswith("/"):
            fields["Content-Type"] = content_type
        fields[UPLOAD_PARAM] = self._sign(grant)
        return UploadForm(self.base, fields)

    def _check_key(self, key: str) -> None:
        self.storage.backend.check_key(validate_key(key))
        if servable_key(key) is None:
            raise InvalidKeyError(f"{key!r} is not a key this app could serve (a dot-file)")

    def _at(self, expires: int | None) -> int:
        lifetime = self.storage.config.url_expires if expires is None else expires
        if not 0 < lifetime <= MAX_EXPIRES:
            raise ValueError(f"expires must be between 1 and {MAX_EXPIRES} seconds")
        return int(self.clock()) + lifetime

    def _serializer(self) -> URLSafeSerializer:
        keys = list(self.secret_keys())
        if not keys:
            raise RuntimeError(
                "local direct uploads are signed with the app's secret key, and none is "
                "set: set SECRET_KEY in the app's configuration"
            )
        signer = {"digest_method": hashlib.sha256}
        return URLSafeSerializer(keys, salt=_SALT, signer_kwargs=signer)  # type: ignore[arg-type]

    def _sign(self, grant: _Grant) -> str:
        return str(self._serializer().dumps(grant.dump()))

    def _grant(self, token: str | None, method: str) -> _Grant:
        if not token:
            raise _Refused("403 Forbidden", "the upload carries no signed policy")
        try:
            payload = self._serializer().loads(token)
            grant = _Grant(*payload)
        except (BadSignature, RuntimeError, TypeError):
            raise _Refused("403 Forbidden", "the upload's signature does not match") from None
        if grant.method != method:
            raise _Refused("403 Forbidden", f"the signature is not for a {method}")
        if self.clock() >= grant.expires_at:
            raise _Refused("403 Forbidden", "the upload's signature has expired")
        return grant

    # -- receiving --------------------------------------------------------------------

    def receive(
        self, environ: dict[str, Any], start_response: StartResponse, key: str
    ) -> Iterable[bytes] | None:
        """Answer a ``PUT`` to ``key`` or a ``POST`` to the base (``key`` empty); ``None``
        for a request that is no upload (no signature on a PUT, a POST to a key)."""
        method = environ.get("REQUEST_METHOD")
        if method == "PUT" and UPLOAD_PARAM in _query(environ):
            receive = self._put
        elif method == "POST" and not key:
            receive = self._post
        else:
            return None
        try:
            body = _Body(environ)
        except _Refused as refused:
            return _plain(start_response, refused.status, reason=str(refused))
        try:
            status, headers = receive(environ, body, key)
        except _Refused as refused:
            body.drain()
            return _plain(start_response, refused.status, reason=str(refused))
        body.drain()
        start_response(status, [*headers, *SECURITY_HEADERS])
        return []

    def _put(self, environ: dict[str, Any], body: _Body, key: str) -> tuple[str, list[Any]]:
        grant = self._grant(_query(environ).get(UPLOAD_PARAM), "PUT")
        if servable_key(key) is None or not grant.covers(key):
            raise _Refused("403 Forbidden", "the signature is for another key")
        self._check_type(grant, environ.get("CONTENT_TYPE") or None, key)
        if grant.max_size is not None:
            body.check_length(grant.max_size)
            body.limit(grant.max_size)
        self._store(key, lambda: self.storage.save(key, body))
        return "204 No Content", []

    def _post(self, environ: dict[str, Any], body: _Body, key: str) -> tuple[str, list[Any]]:
        events = _events(environ, body)
        fields, file = _fields(events)
        grant = self._grant(fields.pop(UPLOAD_PARAM.lower(), None), "POST")
        key = _form_key(fields.pop("key", None), file.filename)
        if not grant.covers(key):
            raise _Refused("403 Forbidden", "the key is outside the policy's key or prefix")
        self._check_type(grant, fields.pop("content-type", None), key)
        if fields:
            extra = ", ".join(sorted(fields))
            raise _Refused("403 Forbidden", f"form fields not in the policy: {extra}")
        if grant.max_size is not None:  # the multipart framing is far below DRAIN bytes
            body.check_length(grant.max_size + DRAIN)
        self._store(key, lambda: _write_file(self.storage, key, events, grant.max_size))
        location = self.base + quote_key(key)
        return "204 No Content", [("Location", location)]

    def _check_type(self, grant: _Grant, declared: str | None, key: str) -> None:
        """The declared type, and the one the key will be served with, must be granted."""
        if grant.content_type is None:
            if declared is not None and grant.method == "POST":
                raise _Refused("403 Forbidden", "form fields not in the policy: content-type")
            return
        if declared is None or not grant.allows_type(declared):
            raise _Refused("403 Forbidden", "the content type is not the one the policy allows")
        # Local files are served with the type their name gives: it must be granted too.
        served = guess_type(key)
        if served is not None and not grant.allows_type(served):
            raise _Refused("403 Forbidden", f"a {served} file name is not allowed here")

    def _store(self, key: str, write: Callable[[], object]) -> None:
        try:
            self.storage.backend.check_key(key)
            write()
        except _TooLarge:
            raise _Refused(*_TOO_LARGE) from None
        except _Incomplete:
            raise _Refused("400 Bad Request", "the body is shorter than its length") from None
        except InvalidKeyError as exc:
            raise _Refused("400 Bad Request", str(exc)) from None


class _Body(io.RawIOBase):
    """The request body: never read past ``Content-Length``, a short one is an error, and
    at most ``max_size`` more bytes of it once :meth:`limit` is set."""

    def __init__(self, environ: dict[str, Any]) -> None:
        super().__init__()
        self._input = environ["wsgi.input"]
        self._left = _content_length(environ)
        self._allowed: int | None = None

    def check_length(self, most: int) -> None:
        """Refuse now if the declared length is over ``most``."""
        if self._left is not None and self._left > most:
            raise _Refused(*_TOO_LARGE)

    def limit(self, max_size: int) -> None:
        """From now on, reading more than ``max_size`` bytes is :class:`_TooLarge`."""
        self._allowed = max_size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer) if self._left is None else min(len(buffer), self._left)
        if self._allowed is not None:
            want = min(want, self._allowed + 1)  # one byte past the limit proves it passed
        data = self._input.read(want) if want else b""
        if self._left is not None:
            if want and not data:
                raise _Incomplete
            self._left -= len(data)
        if self._allowed is not None:
            self._allowed -= len(data)
            if self._allowed < 0:
                raise _TooLarge
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read and drop what is left of the body, if it is at most :data:`DRAIN` bytes."""
        self._allowed = None
        left = DRAIN if self._left is None else self._left
        if left > DRAIN:
            return
        try:
            while left > 0 and (chunk := self._input.read(min(CHUNK, left))):
                left -= len(chunk)
        except OSError:  # the client went away: nothing to protect
            return


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH") or ""
    if raw.isdigit():
        return int(raw)
    if raw or not environ.get("wsgi.input_terminated"):
        raise _Refused("411 Length Required", "the upload needs a Content-Length")
    return None  # chunked: the server ends the stream


def _query(environ: dict[str, Any]) -> dict[str, str]:
    query = environ.get("QUERY_STRING", "")
    return dict(parse_qsl(query, keep_blank_values=True, max_num_fields=32))


def _size(max_size: int | None) -> int | None:
    if max_size is not None and (not isinstance(max_size, int) or max_size < 0):
        raise ValueError(f"max_size must be a number of bytes, not {max_size!r}")
    return max_size


def _granted_type(content_type: str | None) -> str | None:
    """An exact media type, or a prefix (``image/``, ``image/*`` both give ``image/``)."""
    if content_type is None:
        return None
    prefix = content_type.removesuffix("*")
    if prefix.endswith("/"):
        check_content_type(prefix + "x")
        return prefix
    return check_content_type(content_type)


def _form_key(field: str | None, filename: str) -> str:
    """The key a form names, ``${filename}`` replaced by the file's name, validated."""
    if field is None:
        raise _Refused("400 Bad Request", "the form has no key field")
    if _FILENAME in field:
        field = field.replace(_FILENAME, _upload_name(filename))
    try:
        validate_key(field)
    except InvalidKeyError as exc:
        raise _Refused("400 Bad Request", str(exc)) from None
    if servable_key(field) is None:
        raise _Refused("400 Bad Request", "keys may not name dot-files")
    return field


def _upload_name(filename: str) -> str:
    """The client's file name, if it is one plain, servable name of a sensible length."""
    if not filename or "/" in filename or "\\" in filename or servable_key(filename) is None:
        raise _Refused("400 Bad Request", "the file name is not a plain file name")
    if len(filename.encode("utf-8")) > MAX_UPLOAD_NAME:
        raise _Refused("400 Bad Request", f"file names are at most {MAX_UPLOAD_NAME} bytes")
    return filename


def _events(environ: dict[str, Any], body: _Body) -> Iterator[Event]:
    """The multipart events of the body, read a chunk at a time."""
    kind, options = parse_options_header(environ.get("CONTENT_TYPE", ""))
    boundary = options.get("boundary", "")
    if kind != "multipart/form-data" or not boundary:
        raise _Refused("400 Bad Request", "the upload must be multipart/form-data")
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=4 * CHUNK)
    while True:
        try:
            event = decoder.next_event()
            if event is NEED_DATA:
                decoder.receive_data(body.read(CHUNK) or None)
                continue
        # A part header that never ends (RequestEntityTooLarge) or a broken message.
        except (ValueError, AttributeError, LookupError, RequestEntityTooLarge) as exc:
            raise _Refused("400 Bad Request", "the form is malformed") from exc
        yield event
        if isinstance(event, Epilogue):
            return


def _fields(events: Iterator[Event]) -> tuple[dict[str, str], File]:
    """The form fields before the file (names lower-cased), and the file part's start."""
    fields: dict[str, str] = {}
    size = 0
    for event in events:
        if isinstance(event, File):
            if event.name != "file":
                raise _Refused("400 Bad Request", "the file must be the form field 'file'")
            return fields, event
        if isinstance(event, Field):
            value = b""
            for data in events:
                assert isinstance(data, Data)
                value += data.data
                size += len(data.data)
                if size > MAX_FIELDS:
                    raise _Refused("400 Bad Request", "the form fields are too large")
                if not data.more_data:
                    break
            name = (event.name or "").lower()
            if name in fields:
                raise _Refused("400 Bad Request", f"the form repeats the field {name!r}")
            if not name.startswith("x-ignore-"):
                fields[name] = value.decode("utf-8", "replace")
        if isinstance(event, Epilogue):
            break
    raise _Refused("400 Bad Request", "the form has no file field")


def _write_file(storage: Storage, key: str, events: Iterator[Event], max_size: int | None) -> None:
    """Stream the file part into ``key``: stored only once it ended whole, within size."""
    size = 0
    with storage.open(key, "wb") as out:
        for event in events:
            assert isinstance(event, Data)
            size += len(event.data)
            if max_size is not None and size > max_size:
                raise _TooLarge
            out.write(event.data)
            if not event.more_data:
                return
        raise _Refused("400 Bad Request", "the form ended inside the file")  # pragma: no cover
