"""Where an S3 storage's objects live and who it is: bucket, prefix, region, endpoint, URL
style and credentials, read back from a parsed config; and what an object's ETag says.

Parsing (:mod:`.parse`) writes these into the config's fsspec options in s3fs's shape;
everything else (both engines, the presigners, ``check``) reads them back from here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...keys import quote_key

if TYPE_CHECKING:
    from ...backend import Stat
    from ...dsn import StorageConfig

__all__ = [
    "S3Location",
    "credentials",
    "etag_md5",
    "is_ip",
    "location",
    "needs_path_style",
    "public_location",
    "upload_settings",
    "url_location",
]


class S3Location:
    """Where a DSN's bucket lives: bucket, prefix, region, endpoint and URL style."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        region: str,
        endpoint: str,
        path_style: bool,
        access_point: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        #: ``scheme://host[:port]`` of the S3 API, no trailing slash.
        self.endpoint = endpoint
        self.path_style = path_style
        #: The access point ARN, when the DSN names one.
        self.access_point = access_point

    def origin(self) -> str:
        """``scheme://host[:port]`` that requests for the bucket go to."""
        if self.access_point is not None or self.path_style:
            return self.endpoint
        scheme, _, host = self.endpoint.partition("://")
        return f"{scheme}://{self.bucket}.{host}"

    def root_path(self) -> str:
        """The URL path of the storage root on :meth:`origin`, quoted, ending in ``/``."""
        prefix = quote_key(self.prefix) + "/" if self.prefix else ""
        if self.access_point is None and self.path_style:
            return f"/{self.bucket}/{prefix}"
        return "/" + prefix

    def object_base(self) -> str:
        """The unsigned URL of the storage root, ending in ``/``."""
        return self.origin() + self.root_path()


def location(config: StorageConfig) -> S3Location:
    """The :class:`S3Location` of a parsed S3 config (the inverse of :func:`parse_s3`)."""
    options = config.options
    client_kwargs: Mapping[str, Any] = options.get("client_kwargs", {})
    region = str(client_kwargs.get("region_name", "us-east-1"))
    if config.root.startswith("arn:"):
        head, _, tail = config.root.partition(":accesspoint/")
        name, _, prefix = tail.partition("/")
        partition, account = head.split(":")[1], head.split(":")[4]
        suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
        endpoint = f"https://{name}-{account}.s3-accesspoint.{region}.{suffix}"
        arn = f"{head}:accesspoint/{name}"
        return S3Location(name, prefix, region, endpoint, False, access_point=arn)
    bucket, _, prefix = config.root.partition("/")
    endpoint = str(options.get("endpoint_url", "")).rstrip("/")
    s3_config: Mapping[str, Any] = options.get("config_kwargs", {}).get("s3", {})
    style = s3_config.get("addressing_style", "auto")
    path_style = style == "path" or (style == "auto" and needs_path_style(bucket, endpoint))
    return S3Location(bucket, prefix, region, endpoint, path_style)


def public_location(loc: S3Location, endpoint: str) -> S3Location:
    """``loc`` as a browser reaches it through ``endpoint`` (``public_endpoint_url=``).

    The bucket is addressed as on the storage's own endpoint, or by path where the public
    host needs it (an IP address, ``localhost``, a port): the docker-compose case, where
    the app reaches ``http://minio:9000`` and the browser ``http://localhost:9000``.
    """
    path_style = loc.path_style or needs_path_style(loc.bucket, endpoint)
    return S3Location(loc.bucket, loc.prefix, loc.region, endpoint, path_style, loc.access_point)


def url_location(config: StorageConfig) -> S3Location:
    """Where URLs for browsers point (and are signed for): the public endpoint if the DSN
    gives one, else the storage's own."""
    loc = location(config)
    endpoint = config.settings.get("public_endpoint_url")
    return loc if endpoint is None else public_location(loc, str(endpoint))


def upload_settings(config: StorageConfig) -> Mapping[str, str]:
    """The upload settings of a parsed S3 config (``acl=``, ``cache_control=``, ``sse=``,
    ...), by their boto3 names: ``ACL``, ``CacheControl``, ``StorageClass``,
    ``ServerSideEncryption``, ``SSEKMSKeyId``."""
    found: Mapping[str, str] = config.options.get("s3_additional_kwargs", {})
    return found


def needs_path_style(bucket: str, endpoint: str) -> bool:
    host = endpoint.partition("://")[2]
    return "." in bucket or ":" in host or host == "localhost" or is_ip(host)


def is_ip(host: str) -> bool:
    # Host names end in a letter; only then is the (slower) parse worth doing.
    if not host or not (host[-1].isdigit() or ":" in host):
        return False
    import ipaddress  # 2 ms at start-up that most hosts never need

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def credentials(
    config: StorageConfig, environ: Mapping[str, str] = os.environ
) -> tuple[str, str, str | None] | None:
    """``(access key, secret key, session token)`` from the DSN, else from ``AWS_*``
    variables in ``environ``; ``None`` when neither has them (an instance role, a
    profile: the SDK's own chain finds those at I/O time)."""
    options = config.options
    key = options.get("key") or environ.get("AWS_ACCESS_KEY_ID")
    secret = options.get("secret") or environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    token = options.get("token") or (
        None if options.get("key") else environ.get("AWS_SESSION_TOKEN")
    )
    return str(key), str(secret), str(token) if token else None


def same_service(
    a: StorageConfig,
    b: StorageConfig,
    environ_a: Mapping[str, str] = os.environ,
    environ_b: Mapping[str, str] = os.environ,
) -> bool:
    """Whether two S3 configs reach one endpoint with one identity: an object of one can
    be copied into the other by the server (CopyObject), the bytes never leaving it."""
    la, lb = location(a), location(b)
    if la.access_point or lb.access_point:
        return False
    if (la.endpoint, la.region) != (lb.endpoint, lb.region):
        return False
    if bool(a.options.get("anon")) or bool(b.options.get("anon")):
        return False
    return credentials(a, environ_a) == credentials(b, environ_b)


# An ETag that is a plain MD5: a single-part upload without SSE-KMS or SSE-C.
_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")


def etag_md5(stat: Stat) -> str | None:
    """The object's MD5 when its ETag is one (a single-part upload without SSE-KMS)."""
    return stat.etag if stat.etag and _PLAIN_MD5.fullmatch(stat.etag) else None
