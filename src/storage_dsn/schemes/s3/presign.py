"""S3 URLs for browsers, signed locally: Signature Version 4 (and legacy V2, ``auth=s3``)
in the query string, with :mod:`hmac` and :mod:`hashlib`.

:class:`S3Urls` gives a storage's read URLs (public, or presigned when the DSN asks or
when response overrides need a signature), presigned ``PUT`` URLs and POST-policy forms
(:mod:`.post`). Each is the URL botocore's ``generate_presigned_url`` (or the policy its
``generate_presigned_post``) makes for the same inputs at the same instant.

The day's SigV4 signing key is derived once and cached, so a URL costs a few string
operations and two HMACs. A signer is built on the first signed URL, not when the storage
is opened: credentials that only exist at run time (an instance role's, set by a later
deployment step) must not stop a storage from opening for I/O. Signed URLs always point at
the S3 endpoint (a CDN ``domain`` cannot check an S3 signature): the public one
(``public_endpoint_url=``) when the DSN gives it, and they are signed for its host.
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
from ...keys import quoted_key, validate_key, validate_prefix
from ...urls import (
    Clock,
    PublicUrls,
    UploadForm,
    Urls,
    check_content_type,
    encode_unreserved,
    response_overrides,
    response_query,
)
from .location import S3Location, credentials, upload_settings, url_location
from .parse import MAX_EXPIRES
from .post import PostPolicy, conditions

if TYPE_CHECKING:
    from ...dsn import StorageConfig

__all__ = ["S3Urls", "SigV2Signer", "SigV4Signer", "s3_urls", "signer"]

_SHA256 = hashlib.sha256()  # copied, not built, per URL: building looks up the algorithm

_UNRESERVED = "-_.~"
# The request header each upload setting travels in (boto3's name -> S3's header).
UPLOAD_HEADERS = {
    "ACL": "x-amz-acl",
    "CacheControl": "cache-control",
    "StorageClass": "x-amz-storage-class",
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
}


def s3_urls(config: StorageConfig, environ: Mapping[str, str], clock: Clock) -> Urls:
    """The URLs of an S3 storage (the scheme's ``urls`` hook)."""
    return S3Urls(config, lambda: signer(config, environ, clock))


def signer(config: StorageConfig, environ: Mapping[str, str], clock: Clock) -> _Signer:
    """The signer for ``config``; :class:`NoPublicURLError` when no credentials are found."""
    found = credentials(config, environ)
    if found is None:
        raise NoPublicURLError(
            "signed URLs need S3 credentials: put KEY:SECRET in the DSN or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    key, secret, token = found
    version = config.options.get("config_kwargs", {}).get("signature_version", "s3v4")
    cls = SigV2Signer if version == "s3" else SigV4Signer
    return cls(
        url_location(config), key, secret, token, config.url_expires, clock, upload_settings(config)
    )


class S3Urls(Urls):
    """An S3 storage's URLs: public ones as :class:`PublicUrls` makes them, signed ones by a
    :class:`SigV4Signer` (or :class:`SigV2Signer`) built on first use, then kept."""

    def __init__(self, config: StorageConfig, build: Callable[[], _Signer]) -> None:
        self._public = PublicUrls(config)
        self._presign = config.signed_urls
        self._build = build
        self._signer: _Signer | None = None
        self.kind = f"the {config.scheme!r} storage"

    def __repr__(self) -> str:
        return f"<S3 URLs: {self._signer!r}>" if self._signer else "<S3 URLs: signer not built>"

    def _signed(self, key: str, check: Callable[[str], object] = validate_key) -> _Signer:
        found = self._signer
        if found is None:
            try:
                found = self._signer = self._build()
            except NoPublicURLError:
                check(key)  # a bad key is the first thing to report
                raise
        return found

    def url(
        self,
        key: str,
        expires: int | None = None,
        *,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        if download_name is None and content_type is None:
            if self._presign:
                return self._signed(key).url(key, expires)
            return self._public.url(key, expires)
        # S3 refuses response-* parameters on anonymous requests: signed even when public.
        return self._signed(key).url(key, expires, download_name, content_type)

    def upload_url(
        self, key: str, expires: int | None = None, *, content_type: str | None = None
    ) -> str:
        return self._signed(key).upload_url(key, expires, content_type)

    def upload_form(
        self,
        key: str,
        expires: int | None = None,
        *,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> UploadForm:
        found = self._signed(key, _check_form_key)
        return found.upload_form(key, expires, max_size, content_type)


def _check_form_key(key: str) -> str:
    """A form's key: an object key, or a prefix ending in ``/`` (any name under it)."""
    if isinstance(key, str) and key.endswith("/"):
        return validate_prefix(key) if key != "/" else validate_key(key)
    return validate_key(key)


class _Signer:
    """What both signature versions know: where the bucket is, who signs, for how long."""

    def __init__(
        self,
        loc: S3Location,
        access_key: str,
        secret_key: str,
        token: str | None,
        expires: int,
        clock: Clock,
        upload: Mapping[str, str],
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
        self._upload = upload

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._origin!r})"

    def url(
        self,
        key: str,
        expires: int | None = None,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A presigned ``GET`` URL, with the response overrides given."""
        raise NotImplementedError

    def upload_url(self, key: str, expires: int | None, content_type: str | None) -> str:
        """A presigned ``PUT`` URL; the upload settings and ``content_type`` are signed."""
        validate_key(key)
        raise NoPublicURLError(
            "auth=s3 (legacy Signature Version 2) cannot sign upload URLs; use auth=s3v4"
        )

    def upload_form(
        self, key: str, expires: int | None, max_size: int | None, content_type: str | None
    ) -> UploadForm:
        """A POST-policy form for ``key`` (a prefix when it ends in ``/``)."""
        _check_form_key(key)
        raise NoPublicURLError(
            "auth=s3 (legacy Signature Version 2) cannot sign upload forms; use auth=s3v4"
        )


class SigV4Signer(_Signer):
    """AWS Signature Version 4: query-string presigning and POST policies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._region = self._loc.region
        self._scope_tail = f"/{self._region}/s3/aws4_request"
        self._credential_prefix = quote(f"{self._access_key}/", safe=_UNRESERVED)
        self._token_param = (
            "&X-Amz-Security-Token=" + quote(self._token, safe=_UNRESERVED) if self._token else ""
        )
        # Signed headers of an upload, as SigV4 canonicalises them (whitespace folded).
        self._upload_headers = {
            UPLOAD_HEADERS[name]: " ".join(value.split()) for name, value in self._upload.items()
        }
        self._post = PostPolicy(self._loc, self._upload)
        self._host_header = f"host:{self._host}\n"
        self._day = ""
        self._pads: tuple[Any, Any] = (None, None)
        self._second = -1
        self._amz_date = ""
        self._auth_for = (-1, 0)
        self._auth = ("", "", "")
        # A form's signature fields and expiration, kept for the second they are for.
        self._form_auth: tuple[str, Mapping[str, str], str] = ("", {}, "")
        self._expiration = (-1, "")

    def _pads_for(self, day: str) -> tuple[Any, Any]:
        # The signing key changes once a day: derive it then, and keep HMAC's two keyed
        # SHA-256 states (RFC 2104: the key xor ipad, and xor opad), so that a signature
        # costs copies of them, not a new keyed HMAC object per call.
        if day != self._day:
            k = ("AWS4" + self._secret_key).encode()
            for part in (day, self._region, "s3", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            block = k.ljust(64, b"\0")  # 32 bytes: shorter than SHA-256's 64-byte block
            self._pads = (
                hashlib.sha256(bytes(b ^ 0x36 for b in block)),
                hashlib.sha256(bytes(b ^ 0x5C for b in block)),
            )
            self._day = day
        return self._pads

    def _sign(self, day: str, to_sign: str) -> str:
        inner_pad, outer_pad = self._pads_for(day)
        inner = inner_pad.copy()
        inner.update(to_sign.encode())
        outer = outer_pad.copy()
        outer.update(inner.digest())
        signature: str = outer.hexdigest()
        return signature

    def _stamp(self, now: float) -> str:
        """``now`` as SigV4's ``X-Amz-Date``, formatted once per second: a page of URLs
        signs them all within one."""
        second = int(now)
        if second != self._second:
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._second = second
        return self._amz_date

    def _query_auth(self, expires: int | None) -> tuple[str, str, str]:
        """The day, the ``X-Amz-*`` query parameters up to ``X-Amz-Expires`` and the head of
        the string to sign, for now and ``expires``: the same through each second."""
        lifetime = self._expires if expires is None else _lifetime(expires)
        second = int(self._clock())
        if (second, lifetime) != self._auth_for:
            amz_date = self._stamp(second)
            day = amz_date[:8]
            auth = (
                "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                f"&X-Amz-Credential={self._credential_prefix}{day}%2F{self._region}%2Fs3%2Faws4_request"
                f"&X-Amz-Date={amz_date}&X-Amz-Expires={lifetime}"
            )
            self._auth = (day, auth, f"AWS4-HMAC-SHA256\n{amz_date}\n{day}{self._scope_tail}\n")
            self._auth_for = (second, lifetime)
        return self._auth

    def _presign(
        self,
        method: str,
        path: str,
        expires: int | None,
        signed: str,
        canonical_headers: str,
        params: str,
    ) -> str:
        """``method`` on ``path`` presigned: ``signed`` names the headers (lowercase,
        sorted, ``host`` among them) that ``canonical_headers`` gives as SigV4 writes them;
        ``params`` (encoded, sorted) come first in the query, as botocore writes it."""
        day, auth, head = self._query_auth(expires)
        signed_param = "&X-Amz-SignedHeaders=" + signed.replace(";", "%3B")
        # The canonical query is sorted by name: X-Amz-* before the lowercase response-*.
        canonical_query = auth + self._token_param + signed_param
        query = auth + signed_param + self._token_param
        if params:
            canonical_query += "&" + params
            query = params + "&" + query
        digest = _SHA256.copy()
        digest.update(
            f"{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\nUNSIGNED-PAYLOAD".encode()
        )
        to_sign = head + digest.hexdigest()
        return f"{self._origin}{path}?{query}&X-Amz-Signature={self._sign(day, to_sign)}"

    def url(
        self,
        key: str,
        expires: int | None = None,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        path = self._path_base + quoted_key(key)
        params = ""
        if download_name is not None or content_type is not None:
            params = response_query(download_name, content_type)
        return self._presign("GET", path, expires, "host", self._host_header, params)

    def upload_url(self, key: str, expires: int | None, content_type: str | None) -> str:
        path = self._path_base + quoted_key(key)
        headers = {**self._upload_headers, "host": self._host}
        if content_type is not None:
            headers["content-type"] = " ".join(check_content_type(content_type).split())
        names = sorted(headers)
        canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in names)
        return self._presign("PUT", path, expires, ";".join(names), canonical_headers, "")

    def upload_form(
        self, key: str, expires: int | None, max_size: int | None, content_type: str | None
    ) -> UploadForm:
        _check_form_key(key)
        now = self._clock()
        lifetime = self._expires if expires is None else _lifetime(expires)
        amz_date = self._stamp(now)
        day = amz_date[:8]
        if self._form_auth[0] != amz_date:
            fresh = {
                "x-amz-algorithm": "AWS4-HMAC-SHA256",
                "x-amz-credential": f"{self._access_key}/{day}{self._scope_tail}",
                "x-amz-date": amz_date,
                **({"x-amz-security-token": self._token} if self._token else {}),
            }
            self._form_auth = (amz_date, fresh, conditions(fresh))
        _, auth, auth_conditions = self._form_auth
        until = self._second + lifetime
        if self._expiration[0] != until:
            self._expiration = (until, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)))
        fields = self._post.fields(
            key,
            expiration=self._expiration[1],
            max_size=max_size,
            content_type=content_type,
            auth=auth,
            auth_conditions=auth_conditions,
        )
        fields["x-amz-signature"] = self._sign(day, fields["policy"])
        return UploadForm(self._post.url, fields)


class SigV2Signer(_Signer):
    """Legacy AWS Signature Version 2 query-string presigning (``auth=s3``), for reads."""

    def url(
        self,
        key: str,
        expires: int | None = None,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        until = int(self._clock()) + (self._expires if expires is None else _lifetime(expires))
        path = self._path_base + quoted_key(key)
        resource = path
        if self._loc.access_point is None and not self._loc.path_style:
            resource = f"/{self._loc.bucket}{path}"
        params = ""
        if download_name is not None or content_type is not None:
            # Response overrides are signed as sub-resources, their values as they are.
            overrides = response_overrides(download_name, content_type)
            resource += "?" + "&".join(f"{k}={v}" for k, v in overrides.items())
            params = _encoded(overrides) + "&"
        headers = f"x-amz-security-token:{self._token}\n" if self._token else ""
        to_sign = f"GET\n\n\n{until}\n{headers}{resource}"
        digest = hmac.new(self._secret_key.encode(), to_sign.encode(), hashlib.sha1).digest()
        signature = quote(base64.b64encode(digest).decode(), safe="")
        token = "&x-amz-security-token=" + quote(self._token, safe="") if self._token else ""
        return (
            f"{self._origin}{path}?{params}AWSAccessKeyId={quote(self._access_key, safe='')}"
            f"&Signature={signature}&Expires={until}{token}"
        )


def _encoded(params: Mapping[str, str]) -> str:
    """``params`` as a query string, encoded as SigV4 wants (RFC 3986 unreserved kept)."""
    return "&".join(f"{name}={encode_unreserved(value)}" for name, value in params.items())


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
