"""Public and presigned URLs for stored keys.

Resolvers take unvalidated keys and validate them (:func:`~storage_dsn.keys.quoted_key`).


:func:`make_resolver` builds one resolver per storage, when the storage is opened, so a call
to :meth:`Storage.url` is string work only: no network, no new client, no re-parsing.

* ``url=`` or ``domain=`` (or a backend's default base): ``base + quote_key(key)``.
* presigned (``qs_auth=true`` or ``acl=private`` on S3): AWS Signature Version 4 in the query
  string, computed with :mod:`hmac` and :mod:`hashlib`, the day's signing key derived once
  and cached; ``auth=s3`` gives legacy Signature Version 2 query-string URLs. Presigned URLs
  always point at the S3 endpoint (a CDN ``domain`` cannot check an S3 signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import NoPublicURLError
from .keys import quote_key, quoted_key, validate_key

if TYPE_CHECKING:
    from .dsn import StorageConfig
    from .schemes.s3 import S3Location

__all__ = ["Resolver", "SigV2Presigner", "SigV4Presigner", "make_resolver"]

#: ``resolver(key, expires)`` validates ``key`` and returns its URL.
Resolver = Callable[[str, "int | None"], str]
Clock = Callable[[], float]

_UNRESERVED = "-_.~"


def make_resolver(
    config: StorageConfig,
    *,
    environ: Mapping[str, str] = os.environ,
    clock: Clock = time.time,
) -> Resolver:
    """Build the URL resolver for ``config``."""
    if config.signed_urls and config.protocol == "s3":
        return _presigner(config, environ, clock)
    base = config.public_url
    if base is None:
        return _no_url(config)

    def public(key: str, expires: int | None = None) -> str:
        return base + quoted_key(key)

    return public


def _no_url(config: StorageConfig) -> Resolver:
    message = (
        f"the {config.scheme!r} storage has no public URL; add url= (a percent-encoded path "
        "like url=%2Fmedia%2F, or https%3A%2F%2Fcdn.example.org%2Fmedia%2F) or "
        "domain=cdn.example.org to its DSN"
    )

    def no_url(key: str, expires: int | None = None) -> str:
        validate_key(key)
        raise NoPublicURLError(message)

    return no_url


def _presigner(config: StorageConfig, environ: Mapping[str, str], clock: Clock) -> Resolver:
    from .schemes.s3 import location

    options = config.options
    key = options.get("key") or environ.get("AWS_ACCESS_KEY_ID")
    secret = options.get("secret") or environ.get("AWS_SECRET_ACCESS_KEY")
    token = options.get("token") or environ.get("AWS_SESSION_TOKEN")
    if not key or not secret:
        raise NoPublicURLError(
            "presigned URLs need S3 credentials: put KEY:SECRET in the DSN or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    loc = location(config)
    version = options.get("config_kwargs", {}).get("signature_version", "s3v4")
    cls = SigV2Presigner if version == "s3" else SigV4Presigner
    return cls(loc, str(key), str(secret), token and str(token), config.url_expires, clock)


class _Presigner:
    def __init__(
        self,
        loc: S3Location,
        access_key: str,
        secret_key: str,
        token: str | None,
        expires: int,
        clock: Clock,
    ) -> None:
        scheme, _, host = loc.endpoint.partition("://")
        prefix = quote_key(loc.prefix) + "/" if loc.prefix else ""
        if loc.access_point is None and loc.path_style:
            self._path_base = f"/{quote(loc.bucket, safe='')}/{prefix}"
        else:
            self._path_base = "/" + prefix
            if loc.access_point is None:
                host = f"{loc.bucket}.{host}"
        self._origin = f"{scheme}://{host}"
        self._host = host
        self._loc = loc
        self._access_key = access_key
        self._secret_key = secret_key
        self._token = token
        self._expires = expires
        self._clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._origin!r})"

    def __call__(self, key: str, expires: int | None = None) -> str:
        raise NotImplementedError


class SigV4Presigner(_Presigner):
    """AWS Signature Version 4 query-string presigning for ``GET``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._region = self._loc.region
        self._scope_tail = f"/{self._region}/s3/aws4_request"
        self._credential_prefix = quote(f"{self._access_key}/", safe=_UNRESERVED)
        self._token_param = (
            "&X-Amz-Security-Token=" + quote(self._token, safe=_UNRESERVED) if self._token else ""
        )
        self._day = ""
        self._signer: Any = None

    def _signer_for(self, day: str) -> Any:
        # The signing key changes once a day: derive it then, and sign with copies of a
        # keyed HMAC rather than re-keying on every call.
        if day != self._day:
            k = ("AWS4" + self._secret_key).encode()
            for part in (day, self._region, "s3", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._signer = hmac.new(k, digestmod=hashlib.sha256)
            self._day = day
        return self._signer.copy()

    def __call__(self, key: str, expires: int | None = None) -> str:
        now = time.gmtime(self._clock())
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", now)
        day = amz_date[:8]
        path = self._path_base + quoted_key(key)
        # Parameters in byte order of their names, as the canonical query string needs.
        query = (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential={self._credential_prefix}{day}%2F{self._region}%2Fs3%2Faws4_request"
            f"&X-Amz-Date={amz_date}"
            f"&X-Amz-Expires={expires or self._expires}"
            f"{self._token_param}"
            "&X-Amz-SignedHeaders=host"
        )
        canonical = f"GET\n{path}\n{query}\nhost:{self._host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{day}{self._scope_tail}\n"
            + hashlib.sha256(canonical.encode()).hexdigest()
        )
        signer = self._signer_for(day)
        signer.update(to_sign.encode())
        return f"{self._origin}{path}?{query}&X-Amz-Signature={signer.hexdigest()}"


class SigV2Presigner(_Presigner):
    """Legacy AWS Signature Version 2 query-string presigning (``auth=s3``)."""

    def __call__(self, key: str, expires: int | None = None) -> str:
        until = int(self._clock()) + (expires or self._expires)
        path = self._path_base + quoted_key(key)
        resource = path
        if self._loc.access_point is None and not self._loc.path_style:
            resource = f"/{self._loc.bucket}{path}"
        headers = f"x-amz-security-token:{self._token}\n" if self._token else ""
        to_sign = f"GET\n\n\n{until}\n{headers}{resource}"
        digest = hmac.new(self._secret_key.encode(), to_sign.encode(), hashlib.sha1).digest()
        signature = quote(base64.b64encode(digest).decode(), safe="")
        token = "&x-amz-security-token=" + quote(self._token, safe="") if self._token else ""
        return (
            f"{self._origin}{path}?AWSAccessKeyId={quote(self._access_key, safe='')}"
            f"&Signature={signature}&Expires={until}{token}"
        )
