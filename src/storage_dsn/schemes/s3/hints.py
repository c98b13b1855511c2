"""The S3 refusals a new user meets first, told with the fix.

Both engines call :func:`explain` (through ``Backend.explain``) on every error that reaches
the caller: a missing bucket, a clock that is off, an unknown access key or a secret that
signs differently become one line that says what to do. Nothing here prints a secret.
"""

from __future__ import annotations

import re

from .location import S3Location

__all__ = ["explain", "public_read_fix", "s3_code"]

_CODE_IN_TEXT = re.compile(
    r"\((NoSuchBucket|RequestTimeTooSkewed|InvalidAccessKeyId|"
    r"SignatureDoesNotMatch)\)"
)
_NO_BUCKET_TEXT = "The specified bucket does not exist"


def s3_code(exc: BaseException) -> str | None:
    """The S3 error code behind ``exc``: from botocore's response (s3fs keeps it as the
    cause) or from the one-line summary the obstore engine writes."""
    for cause in (exc, exc.__cause__, exc.__context__):
        response = getattr(cause, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    text = str(exc)
    found = _CODE_IN_TEXT.search(text)
    if found:
        return found.group(1)
    return "NoSuchBucket" if _NO_BUCKET_TEXT in text else None


def explain(exc: OSError, loc: S3Location) -> OSError:
    """``exc`` with the fix in its message, for the refusals in this module's docstring;
    ``exc`` itself otherwise."""
    code = s3_code(exc)
    key = exc.filename if isinstance(exc.filename, str) else ""
    if code == "NoSuchBucket":
        return FileNotFoundError(
            exc.errno or 2,
            f"the bucket {loc.bucket!r} does not exist at {loc.endpoint} (NoSuchBucket): "
            "create it (aws s3 mb, the provider's console) or correct the bucket in the DSN",
            key,
        )
    if code == "RequestTimeTooSkewed":
        return PermissionError(
            exc.errno or 13,
            "the server refused the request because this machine's clock is off by more "
            "than 15 minutes (RequestTimeTooSkewed): synchronise the clock "
            "(timedatectl set-ntp true, or the container host's)",
            key,
        )
    if code == "InvalidAccessKeyId":
        return PermissionError(
            exc.errno or 13,
            "the server does not know the access key id (InvalidAccessKeyId): check KEY in "
            "s3://KEY:SECRET@... or AWS_ACCESS_KEY_ID, and that the endpoint is the "
            "provider's that issued it",
            key,
        )
    if code == "SignatureDoesNotMatch":
        return PermissionError(
            exc.errno or 13,
            "the server computed another signature (SignatureDoesNotMatch): the secret key "
            "is wrong, or a '/' or '+' in it is not percent-encoded in the DSN (%2F, %2B)",
            key,
        )
    return exc


def public_read_fix(loc: S3Location, acl: str | None) -> str:
    """What to try when anonymous GETs of the storage's objects are refused (403)."""
    place = f"{loc.bucket}/{loc.prefix}/*" if loc.prefix else f"{loc.bucket}/*"
    policy = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
        f'"Action":"s3:GetObject","Resource":"arn:aws:s3:::{place}"}}]}}'
    )
    by_policy = (
        "give the bucket a policy that lets everyone read: aws s3api put-bucket-policy "
        f"--bucket {loc.bucket} --policy '{policy}' (on AWS, the bucket's Block Public "
        "Access settings must allow public policies)"
    )
    signed = "or keep the bucket private and presign URLs: qs_auth=true"
    if acl == "public-read":
        return (
            "the DSN already asks for acl=public-read, so the bucket ignores or blocks ACLs "
            f"(AWS: Object Ownership 'bucket owner enforced'): {by_policy}; {signed}"
        )
    return (
        "add acl=public-read to the DSN, then run `storage-dsn update-metadata DSN` for the "
        f"objects already stored (buckets with ACLs disabled refuse both); or {by_policy}; "
        f"{signed}"
    )
