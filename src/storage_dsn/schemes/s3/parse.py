"""The grammar of ``s3:`` and ``s3+http:`` DSNs.

Host forms (compatible with the DSNs of Divio's platform and django-storage-url):

* ``BUCKET.s3.REGION.amazonaws.com``, ``BUCKET.s3-REGION.amazonaws.com``,
  ``BUCKET.s3.amazonaws.com`` (us-east-1), and the ``s3-fips``, ``dualstack`` and
  ``s3-accesspoint`` variants: bucket, region and endpoint come from the host;
* any other ``BUCKET.ENDPOINT``: an S3-compatible endpoint ``https://ENDPOINT``;
* an IP address, ``localhost``, a host with a port, or an AWS host with no bucket label:
  path style, the bucket is the first path segment.

The path after the bucket is the key prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...dsn import MAX_URL_EXPIRES, TIMEOUT_PARAMS, expires_param, flag, timeout_settings
from ...errors import InvalidDSNError
from .location import S3Location, is_ip, needs_path_style, public_location

if TYPE_CHECKING:
    from ...dsn import DSNParts, StorageConfig

__all__ = ["CANNED_ACLS", "ENGINES", "MAX_EXPIRES", "PARAMS", "SSE_ALGORITHMS", "parse_s3"]

PARAMS = TIMEOUT_PARAMS | frozenset(
    {
        "auth",
        "region_name",
        "region",
        "addressing_style",
        "endpoint_url",
        "acl",
        "qs_auth",
        "expires",
        "engine",
        "token",
        "public_endpoint_url",
        "cache_control",
        "storage_class",
        "sse",
        "sse_kms_key_id",
    }
)
CANNED_ACLS = frozenset(
    {
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
    }
)
#: Server-side encryption S3 applies on upload (``sse=``): SSE-S3 and SSE-KMS.
SSE_ALGORITHMS = ("AES256", "aws:kms")
#: The engines that move the bytes: s3fs (the default) and obstore.
ENGINES = ("s3fs", "obstore")
#: SigV4 query-string signatures live at most seven days.
MAX_EXPIRES = MAX_URL_EXPIRES

_AWS_HOST = re.compile(
    r"^(?:(?P<bucket>.+)\.)?"
    r"(?P<service>s3|s3-fips|s3-accesspoint|s3-accesspoint-fips|s3-(?P<legacy>[a-z0-9-]+))"
    r"(?:\.(?P<dualstack>dualstack))?"
    r"(?:\.(?P<region>[a-z0-9-]+))?"
    r"\.(?P<suffix>amazonaws\.com(?:\.cn)?)$"
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{0,254}$")
_ACCESS_POINT = re.compile(r"^(?P<name>[a-z0-9-]+)-(?P<account>\d{12})$")
_REGION = re.compile(r"^[a-z0-9-]{1,40}$")
# Upload settings travel as request headers (and POST policy fields): printable ASCII only.
_CACHE_CONTROL = re.compile(r"[ -~]{1,1024}")
_STORAGE_CLASS = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_KMS_KEY_ID = re.compile(r"[A-Za-z0-9:/_.-]{1,2048}")


def parse_s3(parts: DSNParts) -> StorageConfig:
    """Parse an ``s3:`` or ``s3+http:`` DSN."""
    params = dict(parts.params)
    if "region" in params and "region_name" in params:
        raise InvalidDSNError("give 'region_name' or its alias 'region', not both")
    region_param = params.get("region_name", params.get("region"))
    if region_param is not None and not _REGION.match(region_param):
        raise InvalidDSNError("the 'region_name' parameter must look like 'eu-central-1'")
    http = parts.scheme == "s3+http"
    loc = _locate(parts, region_param, http)

    options: dict[str, Any] = {}
    if parts.username is not None:
        if not parts.username or not parts.password:
            raise InvalidDSNError(
                "S3 credentials go in the DSN as ACCESS_KEY:SECRET_KEY@host (percent-encode "
                "'/' as %2F and '+' as %2B), or leave both out to use the environment"
            )
        options["key"] = parts.username
        options["secret"] = parts.password
    if "token" in params:
        options["token"] = params["token"]
    if "endpoint_url" in params:
        loc.endpoint = _check_endpoint(params["endpoint_url"], "endpoint_url")
        loc.path_style = loc.path_style or needs_path_style(loc.bucket, loc.endpoint)
    if loc.access_point is None:
        options["endpoint_url"] = loc.endpoint
    options["client_kwargs"] = {"region_name": loc.region}
    config_kwargs = _config_kwargs(params, loc)
    if config_kwargs:
        options["config_kwargs"] = config_kwargs
    acl = params.get("acl")
    upload = _upload_settings(params)
    if upload:
        options["s3_additional_kwargs"] = upload
    settings: dict[str, Any] = timeout_settings(params)
    public = loc
    if "public_endpoint_url" in params:
        settings["public_endpoint_url"] = _check_endpoint(
            params["public_endpoint_url"], "public_endpoint_url"
        )
        public = public_location(loc, settings["public_endpoint_url"])
    engine = params.get("engine")
    if engine is not None:
        if engine not in ENGINES:
            raise InvalidDSNError(
                "the 'engine' parameter must be 's3fs' (the default) or 'obstore'"
            )
        settings["engine"] = engine  # ours: it picks the backend, never reaches s3fs
    if engine == "obstore":
        if acl is not None:
            raise InvalidDSNError(
                "the obstore engine cannot set ACLs: leave out acl= (use qs_auth=true for "
                "presigned URLs) or use engine=s3fs"
            )
        if params.get("auth") == "s3":
            raise InvalidDSNError("the obstore engine signs with s3v4 only; leave out auth=s3")
    root = f"{loc.access_point or loc.bucket}/{loc.prefix}".rstrip("/")
    return parts.config(
        protocol="s3",
        root=root,
        options=options,
        public_url=parts.public_base(loc.prefix) or public.object_base(),
        signed_urls=flag(params, "qs_auth") or acl == "private",
        url_expires=expires_param(params),
        settings=settings,
    )


def _locate(parts: DSNParts, region: str | None, http: bool) -> S3Location:
    scheme = "http" if http else "https"
    host = parts.host
    if not host:
        raise InvalidDSNError(
            "an S3 DSN needs a host: s3://KEY:SECRET@BUCKET.s3.REGION.amazonaws.com/"
        )
    segments = [s for s in parts.path.split("/") if s]
    aws = _AWS_HOST.match(host) if parts.port is None else None
    if aws and aws.group("bucket") and aws.group("service").startswith("s3-accesspoint"):
        return _access_point(aws, segments, region)
    if aws and aws.group("bucket"):
        bucket = aws.group("bucket")
        region = region or _aws_region(aws)
        endpoint = f"{scheme}://{_aws_endpoint(aws, region)}"
        prefix = "/".join(segments)
    elif aws or _is_path_style_host(parts):
        if not segments:
            raise InvalidDSNError("a path-style S3 DSN needs the bucket as the first path segment")
        bucket, prefix = segments[0], "/".join(segments[1:])
        if aws:
            region = region or _aws_region(aws)
            endpoint = f"{scheme}://{_aws_endpoint(aws, region)}"
        else:
            region = region or "us-east-1"
            endpoint = f"{scheme}://{parts.netloc_host}"
        return _checked(S3Location(bucket, prefix, region, endpoint, path_style=True))
    else:
        bucket, _, endpoint_host = host.partition(".")
        if "." not in endpoint_host:
            raise InvalidDSNError(
                "an S3 DSN's host must be BUCKET.ENDPOINT (like bucket.s3.eu-central-1."
                "amazonaws.com or bucket.sos-ch-dk-2.exo.io), an IP address or host:port"
            )
        first = endpoint_host.split(".")[0]
        region = region or first.partition("-")[2] or first
        endpoint = f"{scheme}://{endpoint_host}"
        prefix = "/".join(segments)
    return _checked(
        S3Location(bucket, prefix, region, endpoint, path_style=needs_path_style(bucket, endpoint))
    )


def _access_point(aws: re.Match[str], segments: list[str], region: str | None) -> S3Location:
    match = _ACCESS_POINT.match(aws.group("bucket"))
    if not match or not aws.group("region"):
        raise InvalidDSNError(
            "an access point host must be NAME-ACCOUNTID.s3-accesspoint.REGION.amazonaws.com"
        )
    region = region or aws.group("region")
    partition = "aws-cn" if aws.group("suffix").endswith(".cn") else "aws"
    name, account = match.group("name"), match.group("account")
    arn = f"arn:{partition}:s3:{region}:{account}:accesspoint/{name}"
    endpoint = f"https://{aws.group(0)}"
    return S3Location(name, "/".join(segments), region, endpoint, False, access_point=arn)


def _aws_region(aws: re.Match[str]) -> str:
    legacy = aws.group("legacy")
    if legacy and legacy not in ("fips", "accesspoint", "external-1"):
        return legacy
    return aws.group("region") or "us-east-1"


def _aws_endpoint(aws: re.Match[str], region: str) -> str:
    service = aws.group("service")
    suffix = aws.group("suffix")
    if aws.group("legacy") and service not in ("s3-fips",):
        service = "s3"  # the legacy s3-REGION form; S3 answers on s3.REGION as well
    plain = service == "s3" and not aws.group("dualstack")
    if plain and not aws.group("region") and not aws.group("legacy"):
        # BUCKET.s3.amazonaws.com: the global endpoint, unless region_name says otherwise.
        return f"s3.{suffix}" if region == "us-east-1" else f"s3.{region}.{suffix}"
    dualstack = ".dualstack" if aws.group("dualstack") else ""
    return f"{service}{dualstack}.{region}.{suffix}"


def _is_path_style_host(parts: DSNParts) -> bool:
    return parts.port is not None or parts.host == "localhost" or is_ip(parts.host)


def _checked(loc: S3Location) -> S3Location:
    if not _BUCKET.match(loc.bucket):
        raise InvalidDSNError(
            "the S3 bucket name must be 1-255 lowercase letters, digits, '.', '-' or '_'"
        )
    return loc


def _check_endpoint(url: str, name: str) -> str:
    if not re.match(r"^https?://[^/?#@\s]+/?$", url):
        raise InvalidDSNError(
            f"the {name!r} parameter must be http(s)://host[:port], percent-encoded"
        )
    return url.rstrip("/")


def _upload_settings(params: Mapping[str, str]) -> dict[str, str]:
    """What every upload sends (``acl=``, ``cache_control=``, ...), as boto3 parameters:
    s3fs's ``s3_additional_kwargs``, which it adds to each call that takes them (the PUT,
    a multipart upload's creation, a copy)."""
    checks = (
        ("acl", "ACL", CANNED_ACLS.__contains__, f"one of {', '.join(sorted(CANNED_ACLS))}"),
        (
            "cache_control",
            "CacheControl",
            _CACHE_CONTROL.fullmatch,
            "a Cache-Control header value (printable ASCII), percent-encoded",
        ),
        (
            "storage_class",
            "StorageClass",
            _STORAGE_CLASS.fullmatch,
            "an S3 storage class like STANDARD_IA or INTELLIGENT_TIERING",
        ),
        ("sse", "ServerSideEncryption", SSE_ALGORITHMS.__contains__, "AES256 or aws:kms"),
        (
            "sse_kms_key_id",
            "SSEKMSKeyId",
            _KMS_KEY_ID.fullmatch,
            "a KMS key ID, ARN or alias/NAME",
        ),
    )
    found = {}
    for name, boto_name, accepts, expected in checks:
        value = params.get(name)
        if value is None:
            continue
        if not accepts(value):
            raise InvalidDSNError(f"the {name!r} parameter must be {expected}")
        found[boto_name] = value
    if "SSEKMSKeyId" in found and found.get("ServerSideEncryption") != "aws:kms":
        raise InvalidDSNError("the 'sse_kms_key_id' parameter needs sse=aws:kms")
    return found


def _config_kwargs(params: Mapping[str, str], loc: S3Location) -> dict[str, Any]:
    config: dict[str, Any] = {}
    auth = params.get("auth")
    if auth is not None:
        if auth not in ("s3v4", "s3"):
            raise InvalidDSNError("the 'auth' parameter must be 's3v4' or 's3' (legacy V2)")
        config["signature_version"] = auth
    style = params.get("addressing_style")
    if style is not None and style not in ("auto", "virtual", "path"):
        raise InvalidDSNError("the 'addressing_style' parameter must be auto, virtual or path")
    if style in (None, "auto") and loc.path_style:
        style = "path"
    if style is not None:
        config["s3"] = {"addressing_style": style}
        loc.path_style = style == "path"
    return config
