"""URL makers: the shape every scheme's URLs take, and the public-base one they share.

A storage's :class:`Urls` makes three things, by string work only (no network, no new
client, no re-parsing per call), validating the key first:

* :meth:`Urls.url`: the URL a browser reads ``key`` from, optionally with response
  overrides (``download_name``, ``content_type``);
* :meth:`Urls.upload_url`: a URL a browser may ``PUT`` ``key`` to;
* :meth:`Urls.upload_form`: an :class:`UploadForm` for a browser's multipart ``POST``.

A storage builds its :class:`Urls` once, through its scheme
(:meth:`storage_dsn.schemes.base.Scheme.resolver`). :class:`PublicUrls` is the default:
``url=`` or ``domain=`` (or the scheme's default base) plus :func:`~storage_dsn.keys.quoted_key`;
signed URLs are the scheme's own (S3's presigners live in :mod:`storage_dsn.schemes.s3`).

A :class:`Urls` is also callable as ``urls(key, expires)``, the plain resolver shape
(:data:`Resolver`) that scheme plugins may return instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .dsn import MAX_URL_EXPIRES
from .errors import NoPublicURLError, StorageDSNError
from .keys import percent_encoder, quoted_key, translator, validate_key

if TYPE_CHECKING:
    from .dsn import StorageConfig

__all__ = [
    "Clock",
    "PublicUrls",
    "Resolver",
    "UploadForm",
    "Urls",
    "as_urls",
    "check_content_type",
    "content_disposition",
    "disposition_query",
    "lifetime",
    "public_resolver",
    "response_overrides",
    "response_query",
]

#: ``resolver(key, expires)`` validates ``key`` and returns its URL.
Resolver = Callable[[str, "int | None"], str]
#: Seconds since the epoch, as :func:`time.time` gives them (tests pass a fixed clock).
Clock = Callable[[], float]

# RFC 7231 media type: type "/" subtype, token characters, optional parameters.
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"[^"\\\x00-\x1f\x7f]*"'
_MEDIA_TYPE = re.compile(rf"{_TCHARS}/{_TCHARS}(\s*;\s*{_TCHARS}=({_TCHARS}|{_QUOTED}))*")
_UNSAFE_FALLBACK = re.compile(r'[^ !#-\[\]-~]|[\\"%/]')  # not printable ASCII, or \ " % /
# Unicode's Cc (C0 and C1 controls) and Cs (surrogates): they would split a header.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: RFC 3986's unreserved characters kept: the encoding SigV4 signs and S3 expects.
encode_unreserved = percent_encoder("-_.~")
_encode_ext_value = percent_encoder("!#$&+^`|-._~")  # RFC 5987's attr-char


@dataclass(frozen=True)
class UploadForm:
    """What a browser needs to upload a file with a multipart ``POST``.

    Send every entry of ``fields`` as a form field, then the file as the field named
    ``file``, to ``url``.
    """

    #: Where the form posts to.
    url: str
    #: Form fields, in order, before the file.
    fields: Mapping[str, str] = field(default_factory=dict)


class Urls:
    """A storage's URLs (subclass per scheme). Every method validates the key first."""

    def url(
        self,
        key: str,
        expires: int | None = None,
        *,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """The URL of ``key``; ``download_name``/``content_type`` override the response's."""
        raise NotImplementedError

    def upload_url(
        self, key: str, expires: int | None = None, *, content_type: str | None = None
    ) -> str:
        """A URL a browser may ``PUT`` ``key`` to; :class:`NoPublicURLError` by default."""
        validate_key(key)
        raise NoPublicURLError(f"{self.kind} cannot sign upload URLs")

    def upload_form(
        self,
        key: str,
        expires: int | None = None,
        *,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> UploadForm:
        """An :class:`UploadForm` for ``key`` (a prefix when it ends in ``/``)."""
        validate_key(key.rstrip("/") or "/")
        raise NoPublicURLError(f"{self.kind} cannot sign upload forms")

    #: Says what the storage is in messages (``"the 'file' storage"``).
    kind = "this storage"

    def __call__(self, key: str, expires: int | None = None) -> str:
        return self.url(key, expires)


class PublicUrls(Urls):
    """``config.public_url`` plus the quoted key; :class:`NoPublicURLError` without a base.

    Response overrides on a base that is a path on this site (``url=/media/``, served by
    the Flask blueprint or Django's ``media_urlpatterns``) become a query the media server
    honours (``response-content-disposition``, ``response-content-type``, S3's names). A
    storage whose base is another host cannot sign them: :class:`NoPublicURLError`.
    """

    def __init__(self, config: StorageConfig) -> None:
        self._base = config.public_url
        self.kind = f"the {config.scheme!r} storage"

    def __repr__(self) -> str:
        return f"PublicUrls({self._base!r})"

    def url(
        self,
        key: str,
        expires: int | None = None,
        *,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        if self._base is None:
            validate_key(key)
            raise NoPublicURLError(
                f"{self.kind} has no public URL; add url= (a percent-encoded path like "
                "url=%2Fmedia%2F, or https%3A%2F%2Fcdn.example.org%2Fmedia%2F) or "
                "domain=cdn.example.org to its DSN"
            )
        url = self._base + quoted_key(key)
        query = response_query(download_name, content_type)
        if query and not self._base.startswith("/"):
            raise NoPublicURLError(
                f"{self.kind} cannot sign download_name or content_type overrides for {self._base}"
            )
        return f"{url}?{query}" if query else url


def public_resolver(config: StorageConfig) -> Urls:
    """The :class:`PublicUrls` of ``config``."""
    return PublicUrls(config)


class _CallableUrls(Urls):
    """A plain ``resolver(key, expires)`` from a plugin, as :class:`Urls` (no overrides)."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    def __repr__(self) -> str:
        return f"Urls({self._resolver!r})"

    def url(
        self,
        key: str,
        expires: int | None = None,
        *,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        if download_name is not None or content_type is not None:
            validate_key(key)
            raise NoPublicURLError(f"{self.kind} cannot sign download_name or content_type")
        return self._resolver(key, expires)


def as_urls(made: Urls | Resolver) -> Urls:
    """``made`` as a :class:`Urls` (a plugin's ``urls`` hook may return a plain resolver)."""
    return made if isinstance(made, Urls) else _CallableUrls(made)


def content_disposition(download_name: str) -> str:
    """``attachment`` with ``download_name``: an ASCII fallback and the RFC 6266/5987 form.

    ``attachment; filename="fallback"; filename*=UTF-8''percent-encoded``. The fallback keeps
    printable ASCII (accents dropped, anything else ``_``); a name with a control
    character, or none at all, is a :class:`StorageDSNError` (it would split the header).
    """
    name, fallback = _disposition_names(download_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{_encode_ext_value(name)}"


def _disposition_names(download_name: str) -> tuple[str, str]:
    """``download_name`` checked, without path separators, and its ASCII fallback."""
    if not isinstance(download_name, str) or not download_name.strip():
        raise StorageDSNError("download_name must be a non-empty string")
    if _CONTROL.search(download_name):
        raise StorageDSNError(f"download_name has a control character: {download_name!r}")
    name = download_name.replace("/", "_").replace("\\", "_")
    ascii_name = name
    if not name.isascii():
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return name, _UNSAFE_FALLBACK.sub("_", ascii_name).strip() or "download"


# A header value's RFC 5987 encoding, encoded again for a query string, in one pass.
_ext_value_in_query = translator(lambda char: encode_unreserved(_encode_ext_value(char)))
_DISPOSITION_IN_QUERY = (
    encode_unreserved('attachment; filename="'),
    encode_unreserved("\"; filename*=UTF-8''"),
)


def disposition_query(download_name: str) -> str:
    """``encode_unreserved(content_disposition(download_name))`` without building the header
    first: the query value of ``response-content-disposition`` (a signed URL's hot path)."""
    name, fallback = _disposition_names(download_name)
    head, middle = _DISPOSITION_IN_QUERY
    return head + encode_unreserved(fallback) + middle + _ext_value_in_query(name)


def check_content_type(content_type: str) -> str:
    """``content_type`` if it is a media type (``image/png``), else :class:`StorageDSNError`."""
    if not isinstance(content_type, str) or _MEDIA_TYPE.fullmatch(content_type) is None:
        raise StorageDSNError(
            f"content_type must be a media type like image/png, not {content_type!r}"
        )
    return content_type


def lifetime(expires: object, default: int) -> int:
    """A signed URL's lifetime: ``expires`` seconds (``default`` for ``None``), from 1 to
    :data:`~storage_dsn.dsn.MAX_URL_EXPIRES`, else :class:`NoPublicURLError`."""
    if expires is None:
        return default
    if type(expires) is not int:
        raise NoPublicURLError(
            f"expires must be whole seconds (an int), not {type(expires).__name__}"
        )
    if not 1 <= expires <= MAX_URL_EXPIRES:
        raise NoPublicURLError(
            f"expires must be from 1 to {MAX_URL_EXPIRES} seconds (7 days), not {expires}"
        )
    return expires


def response_overrides(download_name: str | None, content_type: str | None) -> dict[str, str]:
    """S3's ``response-*`` parameters for the overrides given, validated, in sorted order."""
    params = {}
    if download_name is not None:
        params["response-content-disposition"] = content_disposition(download_name)
    if content_type is not None:
        params["response-content-type"] = check_content_type(content_type)
    return params


def response_query(download_name: str | None, content_type: str | None) -> str:
    """:func:`response_overrides` as a query string (empty without overrides), encoded as
    SigV4 signs it (RFC 3986 unreserved characters kept)."""
    if download_name is None:
        if content_type is None:
            return ""
        return "response-content-type=" + encode_unreserved(check_content_type(content_type))
    disposition = "response-content-disposition=" + disposition_query(download_name)
    if content_type is None:
        return disposition
    return (
        f"{disposition}&response-content-type={encode_unreserved(check_content_type(content_type))}"
    )
