"""``az:``, ``abfs:`` and ``az+http:`` storages on Azure Blob Storage, via adlfs.

``az://ACCOUNT:KEY_OR_BASE64_SAS@blob.core.windows.net/container/prefix/``. The password is
either the account key or, as Divio's platform issues it, a SAS token encoded in base64
(told apart by decoding it: a SAS token carries ``sig=``).

``az+http://ACCOUNT:KEY@HOST:PORT/container/prefix/`` is the same over plain HTTP to an
emulator (Azurite), whose account URLs are path style: ``http://HOST:PORT/ACCOUNT``.
``endpoint_url=`` gives any account URL explicitly. adlfs reaches an account URL other
than ``https://ACCOUNT.blob.core.windows.net`` only through a connection string, which
:class:`AzureBackend` builds when it creates the filesystem, so the key is kept in one
option (``account_key`` or ``sas_token``) until then.
"""

from __future__ import annotations

import base64
import binascii
import errno
import functools
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from ..backend import MetadataFix, Stat, Timeouts, file_path, guess_type, is_listable
from ..dsn import TIMEOUT_PARAMS, cache_control_param, expires_param, flag, timeout_settings
from ..errors import InvalidDSNError
from ..keys import quote_key
from .azure_sas import CLOUD_HOST, azure_urls
from .base import Scheme
from .generic import FsspecBackend

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from ..dsn import DSNParts, StorageConfig

__all__ = ["CLOUD_HOST", "PARAMS", "SCHEMES", "AzureBackend", "details", "parse_azure"]

PARAMS = TIMEOUT_PARAMS | frozenset({"endpoint_url", "qs_auth", "expires", "cache_control"})

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")


def parse_azure(parts: DSNParts) -> StorageConfig:
    """Parse an ``az:``, ``abfs:`` or ``az+http:`` DSN."""
    account = _account(parts)
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        raise InvalidDSNError("an Azure DSN needs a container as the first path segment")
    options: dict[str, str] = {"account_name": account}
    if parts.password:
        sas = _sas_token(parts.password)
        if sas is not None:
            options["sas_token"] = sas
        else:
            options["account_key"] = parts.password
    settings: dict[str, Any] = timeout_settings(parts.params)
    if "endpoint_url" in parts.params:
        settings["endpoint_url"] = _check_endpoint(parts.params["endpoint_url"])
    elif parts.scheme == "az+http":
        settings["endpoint_url"] = f"http://{parts.netloc_host}/{account}"
    cache_control = cache_control_param(parts.params)
    if cache_control is not None:
        settings["cache_control"] = cache_control
    root = "/".join(segments)
    account_url = str(settings.get("endpoint_url", f"https://{account}.{CLOUD_HOST}"))
    return parts.config(
        protocol="abfs",
        root=root,
        options=options,
        public_url=parts.public_base("/".join(segments[1:])) or f"{account_url}/{quote_key(root)}/",
        signed_urls=flag(parts.params, "qs_auth"),
        url_expires=expires_param(parts.params),
        settings=settings,
    )


def _account(parts: DSNParts) -> str:
    """The storage account: the user part, else the host's first label."""
    host, account = parts.host, parts.username
    if parts.scheme == "az+http":
        if not host:
            raise InvalidDSNError(
                "an az+http DSN is az+http://ACCOUNT:KEY@HOST:PORT/container/prefix/"
            )
    elif host.endswith(f".{CLOUD_HOST}"):
        account = account or host.removesuffix(f".{CLOUD_HOST}")
    elif host != CLOUD_HOST and "endpoint_url" not in parts.params:
        raise InvalidDSNError(
            f"an Azure DSN is az://ACCOUNT:KEY@{CLOUD_HOST}/container/prefix/ (for an "
            "emulator: az+http://ACCOUNT:KEY@HOST:PORT/container/, or endpoint_url=)"
        )
    if not account or not _ACCOUNT.match(account):
        raise InvalidDSNError("an Azure DSN needs the storage account name (3-24 a-z, 0-9)")
    return account


def _check_endpoint(url: str) -> str:
    try:
        split = urlsplit(url)
        port_ok = split.port is None or split.port > 0
    except ValueError:
        port_ok = False
    if (
        not port_ok
        or split.scheme not in ("http", "https")
        or not split.hostname
        or "@" in split.netloc
        or split.query
        or split.fragment
        or any(c.isspace() for c in url)
    ):
        raise InvalidDSNError(
            "the 'endpoint_url' parameter must be the account's http(s) URL, percent-encoded "
            "and without credentials: endpoint_url=http%3A%2F%2F127.0.0.1%3A10000%2Faccount"
        )
    return url.rstrip("/")


def _sas_token(password: str) -> str | None:
    """The SAS token inside a base64 password, or ``None`` when it is an account key."""
    if "sig=" in password:
        return password.lstrip("?")
    try:
        decoded = base64.b64decode(password, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded.lstrip("?") if "sig=" in decoded else None


def details(config: StorageConfig) -> list[tuple[str, str]]:
    """Rows for ``storage-dsn check``: which account, container and account URL."""
    account = str(config.options["account_name"])
    container, _, prefix = config.root.partition("/")
    endpoint = config.settings.get("endpoint_url", f"https://{account}.{CLOUD_HOST}")
    if "connection_string" in config.options:
        endpoint = "(from option.connection_string)"
    return [
        ("account", account),
        ("container", container),
        ("prefix", prefix or "(none)"),
        ("endpoint", str(endpoint)),
        *_upload_rows(config),
    ]


def _upload_rows(config: StorageConfig) -> list[tuple[str, str]]:
    cache_control = config.settings.get("cache_control")
    return [] if cache_control is None else [("upload settings", f"cache_control={cache_control}")]


class AzureBackend(FsspecBackend):
    """adlfs with content types on every upload, conditional creates, one-request stats
    and listings, and the Azure SDK's errors as the matching :class:`OSError`.

    ``exclusive`` writes are Azure's conditional create (``If-None-Match: *`` on the upload
    or on the commit of its blocks), so of racing creates exactly one lands. Listings and
    ``stat`` go to the SDK directly: adlfs lists a directory marker blob (``photos/``) as
    the key ``photos``, and follows the HEAD of a missing key with a listing.
    """

    def storage_options(self) -> dict[str, Any]:
        options = super().storage_options()
        endpoint = self.config.settings.get("endpoint_url")
        if endpoint is not None and "connection_string" not in options:
            options["connection_string"] = _connection_string(str(endpoint), options)
        return options

    def _make_filesystem(self) -> AbstractFileSystem:
        options = self.storage_options()
        options.setdefault("use_listings_cache", False)  # as FsspecBackend says why
        # adlfs applies its timeouts to transfers only; the filesystem class below gives
        # them, and the retry count, to the SDK client that makes every request.
        timeouts = Timeouts.of(self.config)
        options.setdefault("connection_timeout", timeouts.connect)
        options.setdefault("read_timeout", timeouts.read)
        options.setdefault("retry_total", timeouts.retries)
        filesystem: AbstractFileSystem = _filesystem_class()(**options)
        return filesystem

    def _key(self, path: str) -> str:
        return path[len(self._root) + 1 :] if self._root else path

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Azure SDK errors raised inside as :class:`OSError` subclasses naming ``key``."""
        from azure.core.exceptions import AzureError, ResourceExistsError

        try:
            yield
        except (AzureError, FileExistsError) as exc:
            if isinstance(exc, (ResourceExistsError, FileExistsError)):
                raise FileExistsError(key) from None
            raise _oserror(exc, key, self.config.settings.get("endpoint_url")) from None

    def open_read(self, key: str) -> BinaryIO:
        with self._errors(key):
            return super().open_read(key)

    def read_bytes(self, key: str) -> bytes:
        with self._errors(key):
            return super().read_bytes(key)

    def _put_bytes(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        with self._errors(self._key(path)):
            self.base.pipe_file(path, data, overwrite=not exclusive, **self._upload_kwargs(path))

    def _put_file(self, local: str, path: str, *, exclusive: bool = False) -> None:
        with self._errors(self._key(path)):
            self.base.put_file(local, path, overwrite=not exclusive, **self._upload_kwargs(path))

    async def _put_bytes_async(self, path: str, data: bytes) -> None:
        fs: Any = self.base
        with self._errors(self._key(path)):
            await fs._pipe_file(path, data, **self._upload_kwargs(path))

    def save(self, key: str, fileobj: BinaryIO, *, exclusive: bool = False) -> None:
        local = file_path(fileobj)
        if local is None:
            super().save(key, fileobj, exclusive=exclusive)
        else:  # no copy: uploaded from where it is
            self._put_file(local, self.path(key), exclusive=exclusive)

    def _upload_kwargs(self, path: str) -> dict[str, Any]:
        """The HTTP headers each upload of ``path`` sets: its guessed type and the DSN's
        ``cache_control``."""
        from azure.storage.blob import ContentSettings

        content_type = guess_type(path)
        cache_control = self.config.settings.get("cache_control")
        if content_type is None and cache_control is None:
            return {}
        settings = ContentSettings(content_type=content_type, cache_control=cache_control)
        return {"content_settings": settings}

    def public_read_fix(self) -> str:
        container = self.config.root.partition("/")[0]
        return (
            "let anonymous clients read the container's blobs: az storage container "
            f"set-permission --name {container} --public-access blob (the storage account "
            "must allow public access: --allow-blob-public-access true); or keep it private "
            "and have url() make SAS URLs: qs_auth=true"
        )

    def delete(self, key: str) -> None:
        with self._errors(key):  # one request; adlfs says FileNotFoundError for a missing blob
            self.base.rm_file(self.path(key))

    def stat(self, key: str) -> Stat:
        from fsspec.asyn import sync

        with self._errors(key):
            return sync(self.base.loop, self._stat, key)  # type: ignore[no-any-return]

    async def _stat(self, key: str) -> Stat:
        from azure.core.exceptions import ResourceNotFoundError

        container, _, name = self.path(key).partition("/")
        client = self._service().get_blob_client(container, name)
        try:
            props = await client.get_blob_properties()
        except ResourceNotFoundError:
            raise FileNotFoundError(key) from None
        if _is_marker(props):
            raise FileNotFoundError(key)
        return _stat(key, props)

    metadata = True

    def fix_metadata(self, key: str, *, dry_run: bool = False) -> MetadataFix:
        from fsspec.asyn import sync

        with self._errors(key):
            return sync(self.base.loop, self._fix_metadata, key, dry_run)  # type: ignore[no-any-return]

    async def _fix_metadata(self, key: str, dry_run: bool) -> MetadataFix:
        """Set Blob Properties replaces all the content headers at once: the ones the DSN
        does not set (the stored MD5 among them) are given back as they are. The update is
        conditional on the ETag read, so a blob written meanwhile is not touched."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        container, _, name = self.path(key).partition("/")
        client = self._service().get_blob_client(container, name)
        try:
            props = await client.get_blob_properties()
        except ResourceNotFoundError:
            raise FileNotFoundError(key) from None
        stored = props.content_settings
        wanted = {
            "content_type": guess_type(key) or stored.content_type,
            "cache_control": self.config.settings.get("cache_control") or stored.cache_control,
        }
        changed = tuple(
            name.replace("_", "-")
            for name, value in wanted.items()
            if getattr(stored, name) != value
        )
        if changed and not dry_run:
            settings = ContentSettings(
                content_type=wanted["content_type"],
                content_encoding=stored.content_encoding,
                content_language=stored.content_language,
                content_disposition=stored.content_disposition,
                cache_control=wanted["cache_control"],
                content_md5=stored.content_md5,
            )
            await client.set_http_headers(
                content_settings=settings,
                etag=props.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        return MetadataFix(changed)

    def list(self, prefix: str) -> Iterator[str]:
        return (key for key, _ in self.scan(prefix))

    def scan(self, prefix: str) -> Iterator[tuple[str, Stat]]:
        from fsspec.asyn import sync

        with self._errors(self.path(prefix)):  # the place listed: "container/prefix/"
            found = sync(self.base.loop, self._scan, prefix)
        return iter(sorted(found, key=lambda item: item[0]))

    async def _scan(self, prefix: str) -> Sequence[tuple[str, Stat]]:
        """One flat listing of the blobs whose names start with ``root/prefix``."""
        container, _, within = f"{self._root}/{prefix}".partition("/")
        strip = len(within) - len(prefix)
        client = self._service().get_container_client(container)
        listing = client.list_blobs(name_starts_with=within or None, include=["metadata"])
        named = [(props.name[strip:], props) async for props in listing]
        return [
            (key, _stat(key, props))
            for key, props in named
            if is_listable(key) and not _is_marker(props)
        ]

    def read_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        fs: Any = self.base

        async def one(key: str) -> bytes:
            with self._errors(key):
                try:
                    data: bytes = await fs._cat_file(self.path(key))
                except FileNotFoundError:
                    raise FileNotFoundError(key) from None
            return data

        results = self._gather([one(key) for key in keys])
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return dict(zip(keys, results, strict=True))

    def _service(self) -> Any:
        """adlfs's async ``BlobServiceClient``, on the filesystem's loop."""
        fs: Any = self.base
        return fs.service_client


@functools.cache
def _filesystem_class() -> type[AbstractFileSystem]:
    """adlfs's filesystem, taking paths as written.

    adlfs reads every path as a URL, so a key with ``?`` and ``#`` (``x?&#y.png``) is
    stored under another name (``x#y.png?&``), and one with ``?versionid=`` loses its
    tail. Paths without a protocol are ``container/blob`` here; URLs (``az://...``) go
    to adlfs as before. Version-aware access, which storage-dsn never turns on, is lost.
    """
    from adlfs import AzureBlobFileSystem

    class KeyedAzureBlobFileSystem(AzureBlobFileSystem):  # type: ignore[misc]
        service_client: Any  # adlfs's async BlobServiceClient

        def __init__(self, *args: Any, retry_total: int | None = None, **kwargs: Any) -> None:
            self.retry_total = retry_total
            super().__init__(*args, **kwargs)

        def do_connect(self) -> None:
            """adlfs's client, made again with the timeouts and retries: adlfs passes its
            ``connection_timeout`` and ``read_timeout`` to up- and downloads only, and
            nothing to the retry policy, whose default waits 15 s and more between tries."""
            super().do_connect()
            made = self.service_client
            self.service_client = type(made)(
                made.url,
                credential=made.credential,
                _location_mode=self.location_mode,
                **_client_settings(self._timeout_kwargs, self.retry_total),
            )

        @classmethod
        def _strip_protocol(cls, path: Any) -> Any:
            if isinstance(path, str) and not path.startswith(_URL_PREFIXES):
                return path.lstrip("/")
            return super()._strip_protocol(path)

        def split_path(
            self, path: str, delimiter: str = "/", return_container: bool = False, **kwargs: Any
        ) -> tuple[str, str, None]:
            container, _, blob = self._strip_protocol(path).partition(delimiter)
            return container, blob, None

    return KeyedAzureBlobFileSystem


_URL_PREFIXES = ("abfs://", "az://", "abfss://")


def _client_settings(timeouts: dict[str, Any], retries: int | None) -> dict[str, Any]:
    """The SDK client's keyword arguments for adlfs's timeouts and our retry count."""
    from azure.storage.blob.aio import ExponentialRetry  # the async policy: adlfs is async

    settings = {k: v for k, v in timeouts.items() if k in ("connection_timeout", "read_timeout")}
    if retries is not None:
        # The SDK's ExponentialRetry waits initial + base ** n (+- jitter) seconds before
        # retry n: 2, 4, 8 s here; its defaults (15 + 3 ** n +- 3) wait over a minute for
        # three retries alone.
        settings["retry_policy"] = ExponentialRetry(
            initial_backoff=0,
            increment_base=2,
            random_jitter_range=1,
            retry_total=retries,
            retry_connect=retries,
            retry_read=retries,
            retry_status=retries,
        )
    return settings


def _connection_string(endpoint: str, options: dict[str, Any]) -> str:
    """The connection string for ``endpoint``, taking the credential out of ``options``."""
    fields = [f"DefaultEndpointsProtocol={urlsplit(endpoint).scheme}"]
    if "account_name" in options:
        fields.append(f"AccountName={options['account_name']}")
    key, sas = options.pop("account_key", None), options.pop("sas_token", None)
    if key:
        fields.append(f"AccountKey={key}")
    elif sas:
        fields.append(f"SharedAccessSignature={sas}")
    fields.append(f"BlobEndpoint={endpoint}")
    return ";".join(fields) + ";"


def _is_marker(props: Any) -> bool:
    """Whether a blob stands for a directory: the empty blob ``photos`` that the Hadoop
    drivers and adlfs's ``mkdir`` leave, flagged in its metadata."""
    metadata = {k.lower(): v for k, v in (props.metadata or {}).items()}
    return "true" in (metadata.get("hdi_isfolder"), metadata.get("is_directory"))


def _stat(key: str, props: Any) -> Stat:
    settings = props.content_settings
    content_type = getattr(settings, "content_type", None) if settings else None
    etag = props.etag
    return Stat(
        size=int(props.size or 0),
        mtime=props.last_modified.timestamp() if props.last_modified else None,
        etag=str(etag).strip('"') if etag else None,
        content_type=content_type or guess_type(key),
    )


def _oserror(exc: BaseException, key: str, endpoint: object) -> OSError:
    """The :class:`OSError` for an Azure SDK error: one line naming the key, the status
    and Azure's error code, never the SDK's text (which can quote a request)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None)
    said = " ".join(str(getattr(part, "value", part)) for part in (status, code) if part)
    said = said or type(exc).__name__
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return FileNotFoundError(errno.ENOENT, f"not found on Azure ({said})", key)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return PermissionError(
            errno.EACCES, f"Azure refused access ({said}): check the account key or SAS", key
        )
    where = endpoint or "Azure Blob Storage"
    if _timed_out(exc):
        return TimeoutError(
            errno.ETIMEDOUT,
            f"{where} did not answer in time (connect_timeout, read_timeout): {said}",
            key,
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return ConnectionError(f"cannot reach {where} ({said}): {key!r}")
    return OSError(errno.EIO, f"Azure error ({said})", key)


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is, or wraps, a timeout: the SDK's own, or a download's body that
    stalled (its retry loop raises ``HttpResponseError`` around the timeout)."""
    import asyncio  # here, not at the top: asyncio costs every command ~40 ms to import

    from azure.core.exceptions import ServiceRequestTimeoutError, ServiceResponseTimeoutError

    timeouts = (ServiceRequestTimeoutError, ServiceResponseTimeoutError, asyncio.TimeoutError)
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain; never loop on a cycle
        if seen is None or isinstance(seen, timeouts):
            return seen is not None
        seen = getattr(seen, "inner_exception", None) or seen.__cause__
    return False


SCHEMES = tuple(
    Scheme(
        name=name,
        parse=parse_azure,
        params=PARAMS,
        extra="azure",
        requires=("adlfs",),
        backend=AzureBackend,
        urls=azure_urls,
        details=details,
    )
    for name in ("az", "abfs", "az+http")
)
