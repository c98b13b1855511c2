"""GCS storages' URLs: public ones, and V4 signed URLs from a service-account key, offline.

A signed URL is what google-cloud-storage's ``Blob.generate_signed_url(version="v4")``
makes, byte for byte: ``GOOG4-RSA-SHA256`` over the canonical request, signed with the
service account's RSA key (PKCS #1 v1.5, SHA-256) by :mod:`cryptography`, which
google-auth already needs. The key is read and parsed on the first signed URL, not when the
storage opens; then a URL costs one RSA signature and some string work (the signature is
most of it: no signer can skip it).

Where the key comes from: ``option.token`` (a path to the service account's JSON key file,
or that JSON itself, percent-encoded), else the file ``GOOGLE_APPLICATION_CREDENTIALS``
names. ``qs_auth=true`` signs every ``url()``; without it a URL is public unless it carries
a download name or a content type (signed ``response-content-disposition`` /
``response-content-type``), which only a signed URL can make GCS honour. ``upload_url``
signs a ``PUT``, with ``Content-Type`` as a signed header when a type is given (GCS then
refuses another). Upload forms (POST policies) are not made yet.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ...errors import NoPublicURLError
from ...keys import quote_key, quoted_key, validate_key
from ...urls import (
    Clock,
    PublicUrls,
    UploadForm,
    Urls,
    check_content_type,
    lifetime,
    response_query,
)
from .parse import GOOGLE_ENDPOINT

if TYPE_CHECKING:
    from ...dsn import StorageConfig

__all__ = ["GCSUrls", "ServiceAccountSigner", "gcs_urls"]

_SCOPE_TAIL = "%2Fauto%2Fstorage%2Fgoog4_request"
_NEEDS_KEY = (
    "V4 signed URLs need a service-account key: option.token=PATH to its JSON key file (or "
    "the JSON itself, percent-encoded), or GOOGLE_APPLICATION_CREDENTIALS"
)


def gcs_urls(config: StorageConfig, environ: Mapping[str, str], clock: Clock) -> Urls:
    """The URLs of a GCS storage (the scheme's ``urls`` hook)."""
    return GCSUrls(config, environ, clock)


class ServiceAccountSigner:
    """A service account's e-mail and RSA private key, ready to sign."""

    def __init__(self, info: Mapping[str, Any]) -> None:
        try:  # google-auth 2.x needs it; older releases could go without
            from cryptography.exceptions import UnsupportedAlgorithm
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
        except ImportError:
            raise NoPublicURLError(
                "V4 signed URLs need the cryptography package: pip install cryptography"
            ) from None

        email, pem = info.get("client_email"), info.get("private_key")
        if info.get("type") != "service_account" or not email or not isinstance(pem, str):
            raise NoPublicURLError(f"the key is not a service-account key; {_NEEDS_KEY}")
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise NoPublicURLError(
                "the service-account key's private_key is not a PEM RSA key"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise NoPublicURLError("the service-account key's private_key is not an RSA key")
        #: The service account, as the ``X-Goog-Credential`` starts.
        self.email = str(email)
        self._key = key
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()

    def __repr__(self) -> str:
        return f"ServiceAccountSigner({self.email!r})"

    def sign(self, data: bytes) -> str:
        """The RSA signature of ``data``, in hex."""
        return self._key.sign(data, self._padding, self._hash).hex()


class GCSUrls(Urls):
    """Public URLs, and V4 signed URLs from a service-account key."""

    def __init__(self, config: StorageConfig, environ: Mapping[str, str], clock: Clock) -> None:
        self._public = PublicUrls(config)
        self.kind = self._public.kind
        self._signed = config.signed_urls
        self._expires = config.url_expires
        self._clock = clock
        self._token = config.options.get("token")
        self._environ = environ
        bucket, _, prefix = config.root.partition("/")
        self._origin = str(config.options.get("endpoint_url", GOOGLE_ENDPOINT))
        self._host = f"host:{urlsplit(self._origin).netloc}"
        self._path = f"/{bucket}/{quote_key(prefix)}/" if prefix else f"/{bucket}/"
        self._signer: ServiceAccountSigner | None = None
        self._credential = ""

    def __repr__(self) -> str:
        return f"GCSUrls({self._origin + self._path!r})"

    def url(
        self,
        key: str,
        expires: int | None = None,
        *,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        if not self._signed and download_name is None and content_type is None:
            return self._public.url(key, expires)
        path = self._path + quoted_key(key)
        overrides = response_query(download_name, content_type)
        return self._sign("GET", path, lifetime(expires, self._expires), "", overrides)

    def upload_url(
        self, key: str, expires: int | None = None, *, content_type: str | None = None
    ) -> str:
        path = self._path + quoted_key(key)
        header = ""
        if content_type is not None:
            header = f"content-type:{' '.join(check_content_type(content_type).split())}\n"
        return self._sign("PUT", path, lifetime(expires, self._expires), header, "")

    def upload_form(
        self,
        key: str,
        expires: int | None = None,
        *,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> UploadForm:
        validate_key(key.rstrip("/") or "/")
        raise NoPublicURLError(
            f"{self.kind} cannot sign upload forms yet: use upload_url() (a signed PUT)"
        )

    def _sign(self, method: str, path: str, expires: int, header: str, overrides: str) -> str:
        """The signed URL of ``path``; ``header``: a ``content-type:`` line to sign, or ``""``."""
        signer = self._signer or self._load()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        signed = "content-type;host" if header else "host"
        # Parameters in byte order of name=value, as the canonical query string needs.
        query = (
            "X-Goog-Algorithm=GOOG4-RSA-SHA256"
            f"&X-Goog-Credential={self._credential}{stamp[:8]}{_SCOPE_TAIL}"
            f"&X-Goog-Date={stamp}&X-Goog-Expires={expires}"
            f"&X-Goog-SignedHeaders={signed.replace(';', '%3B')}"
            + (f"&{overrides}" if overrides else "")
        )
        canonical = f"{method}\n{path}\n{query}\n{header}{self._host}\n\n{signed}\nUNSIGNED-PAYLOAD"
        to_sign = (
            f"GOOG4-RSA-SHA256\n{stamp}\n{stamp[:8]}/auto/storage/goog4_request\n"
            + hashlib.sha256(canonical.encode()).hexdigest()
        )
        return f"{self._origin}{path}?{query}&X-Goog-Signature={signer.sign(to_sign.encode())}"

    def _load(self) -> ServiceAccountSigner:
        """The signer, from the service-account key (read on the first signed URL)."""
        signer = self._signer = ServiceAccountSigner(_key_info(self._token, self._environ))
        self._credential = quote(f"{signer.email}/", safe="~")
        return signer


def _key_info(token: object, environ: Mapping[str, str]) -> Mapping[str, Any]:
    """The service-account key: ``option.token`` (JSON or a path), else the environment's."""
    if isinstance(token, Mapping):
        return token
    if token is None:
        token = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not isinstance(token, str) or not token:
        raise NoPublicURLError(_NEEDS_KEY)
    text = token
    if not token.lstrip().startswith("{"):
        try:
            text = Path(token).expanduser().read_text(encoding="utf-8")
        except (OSError, ValueError):
            raise NoPublicURLError(
                f"cannot read the key file option.token names; {_NEEDS_KEY}"
            ) from None
    try:
        info = json.loads(text)
    except ValueError:
        raise NoPublicURLError(f"the key is not JSON; {_NEEDS_KEY}") from None
    if not isinstance(info, dict):
        raise NoPublicURLError(f"the key is not a JSON object; {_NEEDS_KEY}")
    return info
