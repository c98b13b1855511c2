"""Azure storages' URLs: public ones, and SAS URLs signed offline from the account key.

A signed URL is the blob's URL with a *service SAS* for that one blob (``sr=b``), as
azure-storage-blob's ``generate_blob_sas`` makes it, byte for byte: ``sp=r`` to read,
with ``rscd``/``rsct`` (signed response overrides) for a download name or a content type;
``sp=cw`` (create, write) to ``PUT`` an upload. The account key is decoded and keyed into
an HMAC once; a URL then costs one HMAC and some string work. ``spr=https`` is signed
whenever the account URL is HTTPS, so a URL cannot be replayed over plain HTTP.

Rules a user meets (docs/backends.md says the same):

* ``qs_auth=true`` signs every ``url()``; without it a URL is public unless it carries
  an override, which only a SAS can make Azure honour (so it is signed then too).
* An upload URL must be sent with ``x-ms-blob-type: BlockBlob``; a SAS cannot restrict
  the uploaded type, so ``upload_url(content_type=...)`` is refused rather than ignored.
* Azure has no POST policy: ``upload_form`` is refused and points to ``upload_url``.
* A DSN holding a SAS instead of the account key cannot sign. ``url()`` reuses that SAS
  only if it grants reading and nothing else (a wider one would hand every browser the
  app's own write access); the SAS's own expiry then applies, so ``expires`` and
  overrides are refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from ..errors import NoPublicURLError
from ..keys import quote_key, quoted_key, validate_key
from ..urls import (
    Clock,
    PublicUrls,
    UploadForm,
    Urls,
    check_content_type,
    content_disposition,
    lifetime,
)

if TYPE_CHECKING:
    from ..dsn import StorageConfig

__all__ = ["CLOUD_HOST", "SAS_VERSION", "AzureUrls", "account_url", "azure_urls"]

#: The host of Azure's blob service; an account's URL is ``https://ACCOUNT.CLOUD_HOST``.
CLOUD_HOST = "blob.core.windows.net"
#: The signed version (``sv``): the one azure-storage-blob 12.31 signs with, so URLs are
#: byte-identical to its ``generate_blob_sas`` (the tests compare them).
SAS_VERSION = "2026-10-06"

_READ = "r"
_UPLOAD = "cw"  # in Azure's order (racwd...): create a blob, or overwrite one


def account_url(config: StorageConfig) -> str:
    """The blob service URL of ``config``'s account (``endpoint_url=`` or Azure's)."""
    endpoint = config.settings.get("endpoint_url")
    return str(endpoint or f"https://{config.options['account_name']}.{CLOUD_HOST}")


def azure_urls(config: StorageConfig, environ: Mapping[str, str], clock: Clock) -> Urls:
    """The URLs of an Azure storage (the scheme's ``urls`` hook)."""
    return AzureUrls(config, clock)


class AzureUrls(Urls):
    """Public URLs, and SAS URLs for one blob signed with the account key."""

    def __init__(self, config: StorageConfig, clock: Clock) -> None:
        self._public = PublicUrls(config)
        self.kind = self._public.kind
        self._signed = config.signed_urls
        self._expires = config.url_expires
        self._clock = clock
        account = str(config.options["account_name"])
        origin = account_url(config)
        container, _, prefix = config.root.partition("/")
        within = f"{prefix}/" if prefix else ""
        self._base = f"{origin}/{container}/{quote_key(within)}"
        self._resource = f"/blob/{account}/{container}/{within}"
        self._https = "&spr=https" if origin.startswith("https:") else ""
        self._key = config.options.get("account_key")
        self._sas = config.options.get("sas_token")
        self._hmac: Any = None
        self._expiry = (-1, "")

    def __repr__(self) -> str:
        return f"AzureUrls({self._base!r})"

    def url(
        self,
        key: str,
        expires: int | None = None,
        *,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        overrides = download_name is not None or content_type is not None
        if not self._signed and not overrides:
            return self._public.url(key, expires)
        path = quoted_key(key)
        if self._key is None:
            return f"{self._base}{path}?{self._reused_sas(expires, overrides)}"
        disposition = "" if download_name is None else content_disposition(download_name)
        response_type = "" if content_type is None else check_content_type(content_type)
        sas = self._sign(key, _READ, lifetime(expires, self._expires), disposition, response_type)
        return f"{self._base}{path}?{sas}"

    def upload_url(
        self, key: str, expires: int | None = None, *, content_type: str | None = None
    ) -> str:
        """A SAS URL to ``PUT`` ``key`` with the header ``x-ms-blob-type: BlockBlob``."""
        path = quoted_key(key)
        if content_type is not None:
            raise NoPublicURLError(
                "an Azure SAS cannot restrict the type of an upload: leave content_type out "
                "(send it as x-ms-blob-content-type) and check the type after the upload"
            )
        if self._key is None:
            raise NoPublicURLError(f"{self.kind} cannot sign upload URLs: {_NEEDS_KEY}")
        return f"{self._base}{path}?{self._sign(key, _UPLOAD, lifetime(expires, self._expires))}"

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
            "Azure Blob Storage has no POST upload policy: use upload_url() (a PUT with "
            "the header x-ms-blob-type: BlockBlob)"
        )

    def _sign(
        self,
        key: str,
        permission: str,
        expires: int,
        disposition: str = "",
        response_type: str = "",
    ) -> str:
        """The SAS query for ``key``: fields in the order Azure's string-to-sign has them."""
        until = int(self._clock()) + expires
        # Formatted once per second (and lifetime), not per URL; one tuple, so a thread
        # never pairs another's expiry with its own instant.
        cached, expiry = self._expiry
        if until != cached:
            expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))
            self._expiry = (until, expiry)
        spr = "https" if self._https else ""
        to_sign = (
            f"{permission}\n\n{expiry}\n{self._resource}{key}\n\n\n{spr}\n{SAS_VERSION}\nb"
            f"\n\n\n\n{disposition}\n\n\n{response_type}"
        )
        signer = (self._hmac or self._keyed()).copy()
        signer.update(to_sign.encode())
        signature = base64.b64encode(signer.digest()).decode()
        overrides = ""
        if disposition:
            overrides = f"&rscd={quote(disposition)}"
        if response_type:
            overrides += f"&rsct={quote(response_type)}"
        return (
            f"se={expiry.replace(':', '%3A')}&sp={permission}{self._https}&sv={SAS_VERSION}"
            f"&sr=b{overrides}&sig={signature.replace('+', '%2B').replace('=', '%3D')}"
        )

    def _keyed(self) -> Any:
        """The HMAC keyed with the account key, decoded on the first signed URL."""
        try:
            secret = base64.b64decode(str(self._key), validate=True)
        except (binascii.Error, ValueError):
            raise NoPublicURLError(
                f"{self.kind} cannot sign: its account key is not base64"
            ) from None
        self._hmac = hmac.new(secret, digestmod=hashlib.sha256)
        return self._hmac

    def _reused_sas(self, expires: int | None, overrides: bool) -> str:
        """The DSN's own SAS, for reading, when it grants reading and nothing more."""
        if self._sas is None:
            raise NoPublicURLError(f"{self.kind} cannot sign URLs: {_NEEDS_KEY}")
        if overrides or expires is not None:
            raise NoPublicURLError(
                f"{self.kind} has a SAS, not the account key: it cannot sign download_name, "
                f"content_type or expires ({_NEEDS_KEY})"
            )
        if not _read_only(str(self._sas)):
            raise NoPublicURLError(
                f"{self.kind} has a SAS that grants more than reading, which browsers must not "
                f"get: {_NEEDS_KEY}, or a read-only SAS (sp=r)"
            )
        return str(self._sas)


_NEEDS_KEY = "put the account key in the DSN (az://ACCOUNT:KEY@...)"


def _read_only(sas: str) -> bool:
    """Whether the SAS token ``sas`` grants reading blobs and nothing else."""
    fields = parse_qs(sas)
    permissions = fields.get("sp", [""])[0]
    return permissions == "r"
