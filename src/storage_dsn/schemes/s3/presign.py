"""S3 presigned URLs, computed locally: Signature Version 4 (and legacy V2, ``auth=s3``)
in the query string, with :mod:`hmac` and :mod:`hashlib`.

The day's SigV4 signing key is derived once and cached, so a URL costs a few string
operations and two HMACs. A presigner is built on the first signed URL, not when the
storage is opened: credentials that only exist at run time (an instance role's, set by a
later deployment step) must not stop a storage from opening for I/O. Presigned URLs always
point at the S3 endpoint (a CDN ``domain`` cannot check an S3 signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...errors import NoPublicURLError
from ...keys import quoted_key, validate_key
from ...urls import Clock, Resolver, Urls, public_resolver
from .location import S3Location, credentials, location
from .parse import MAX_EXPIRES

if TYPE_CHECKING:
    from ...dsn import StorageConfig

__all__ = ["SigV2Presigner", "SigV4Presigner", "presigner", "s3_urls"]

_UNRESERVED = "-_.~"


def s3_urls(config: StorageConfig, environ: Mapping[str, str], clock: Clock) -> Urls:
    """The URL resolver of an S3 storage: presigned when ``config.signed_urls``."""
    if config.signed_urls:
        return _Lazy(lambda: presigner(config, environ, clock))
    return public_resolver(config)


def presigner(config: StorageConfig, environ: Mapping[str, str], clock: Clock) -> Resolver:
    """The presigner for ``config``; :class:`NoPublicURLError` when no credentials are found."""
    found = credentials(config, environ)
    if found is None:
        raise NoPublicURLError(
            "presigned URLs need S3 credentials: put KEY:SECRET in the DSN or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    key, secret, token = found
    version = config.options.get("config_kwargs", {}).get("signature_version", "s3v4")
    cls = SigV2Presigner if version == "s3" else SigV4Presigner
    return cls(location(config), key, secret, token, config.url_expires, clock)


class _Lazy(Urls):
    """A presigner built on its first call (then kept)."""

    def __init__(self, build: Callable[[], Resolver]) -> None:
        self._build = build
        self._resolver: Resolver | None = None

    def __repr__(self) -> str:
        return f"<presigner: {self._resolver!r}>" if self._resolver else "<presigner: not built>"

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
            raise NoPublicURLError("response overrides are not signed yet")
        resolver = self._resolver
        if resolver is None:
            try:
                resolver = self._resolver = self._build()
            except NoPublicURLError:
                validate_key(key)  # a bad key is the first thing to report
                raise
        return resolver(key, expires)


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
        self._path_base = loc.root_path()
        self._origin = loc.origin()
        self._host = self._origin.partition("://")[2]
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
            f"&X-Amz-Expires={self._expires if expires is None else _lifetime(expires)}"
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
        until = int(self._clock()) + (self._expires if expires is None else _lifetime(expires))
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


def _lifetime(expires: object) -> int:
    """``expires`` if S3 accepts it for a presigned URL, else :class:`NoPublicURLError`."""
    if type(expires) is not int:
        raise NoPublicURLError(
            f"expires must be whole seconds (an int), not {type(expires).__name__}"
        )
    if not 1 <= expires <= MAX_EXPIRES:
        raise NoPublicURLError(
            f"expires must be from 1 to {MAX_EXPIRES} seconds (7 days, S3's limit for a "
            f"presigned URL), not {expires}"
        )
    return expires
