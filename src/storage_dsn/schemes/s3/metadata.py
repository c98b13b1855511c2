"""Fixing a stored S3 object's metadata in place (``Storage.update_metadata`` on S3).

S3 changes an object's content type, ``Cache-Control``, storage class or encryption only by
rewriting it: ``CopyObject`` onto itself with ``MetadataDirective=REPLACE``, done inside the
server (over 5 GiB, a multipart upload of ``UploadPartCopy`` ranges). A replacing copy
drops whatever it is not given, so everything the DSN does not set is given back as
stored: the user metadata, the other content headers, the storage class, the encryption
and the ACL grants. An ACL alone changes by ``PutObjectAcl``, no copy.

:func:`plan` decides from the object's ``HeadObject`` (and ``GetObjectAcl``) answers, with no
I/O of its own; :func:`fix` runs it through any boto-style ``call(operation, **params)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...backend import MetadataFix, guess_type

__all__ = ["COPY_PART", "MAX_COPY", "Plan", "fix", "plan"]

#: The largest object one ``CopyObject`` takes: 5 GiB. Larger ones are copied in parts.
MAX_COPY = 5 * 2**30
#: The range each part of a larger copy takes: 10,000 parts reach S3's 5 TiB limit.
COPY_PART = 512 * 2**20

_ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
_AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
# The grants beyond the owner's FULL_CONTROL that each canned ACL we can recognise makes.
_CANNED_GRANTS: dict[str, frozenset[tuple[str, str]]] = {
    "private": frozenset(),
    "public-read": frozenset({(_ALL_USERS, "READ")}),
    "public-read-write": frozenset({(_ALL_USERS, "READ"), (_ALL_USERS, "WRITE")}),
    "authenticated-read": frozenset({(_AUTHENTICATED, "READ")}),
}
# Storage classes whose objects must be restored before they can be read or copied.
_ARCHIVES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
# Content headers a replacing copy would drop: given back as stored (boto3 names).
_KEPT = ("ContentDisposition", "ContentEncoding", "ContentLanguage", "WebsiteRedirectLocation")
_GRANT_PARAMS = {
    "FULL_CONTROL": "GrantFullControl",
    "READ": "GrantRead",
    "READ_ACP": "GrantReadACP",
    "WRITE_ACP": "GrantWriteACP",
}


@dataclass
class Plan:
    """What :func:`fix` does to one object."""

    changed: list[str] = field(default_factory=list)
    #: The ``CopyObject`` parameters beyond bucket and key, or ``None``: no copy needed.
    copy: dict[str, Any] | None = None
    #: The canned ACL to put without a copy, or ``None``.
    put_acl: str | None = None
    #: Why the object cannot be rewritten, or ``None``.
    skipped: str | None = None


def plan(
    key: str,
    head: Mapping[str, Any],
    upload: Mapping[str, str],
    acl: Mapping[str, Any] | None,
) -> Plan:
    """What ``key`` needs, from its ``head`` and ``acl`` (``GetObjectAcl``'s answer, asked
    when the DSN gives ``acl=``) and the DSN's ``upload`` settings (boto3 names)."""
    result = Plan()
    wanted = _wanted(key, head, upload)
    for name, header in (
        ("ContentType", "content-type"),
        ("CacheControl", "cache-control"),
        ("StorageClass", "storage-class"),
        ("ServerSideEncryption", "sse"),
    ):
        if wanted.get(name) != _stored(head, name):
            result.changed.append(header)
    kms = upload.get("SSEKMSKeyId")
    if kms is not None and not _same_kms_key(kms, head.get("SSEKMSKeyId")):
        result.changed.append("sse-kms-key")
    canned = upload.get("ACL")
    acl_differs = canned is not None and not _has_canned_acl(acl, canned)
    archived = _stored(head, "StorageClass") in _ARCHIVES and not head.get("Restore")
    if result.changed and archived:
        result.skipped = (
            f"archived in {head['StorageClass']}, which S3 cannot copy: restore it first to "
            f"change {', '.join(result.changed)}"
        )
        result.changed = []
    elif result.changed:
        result.copy = {**wanted, **_acl_params(canned, acl)}
    if acl_differs:
        result.changed.append("acl")
        if result.copy is None:
            result.put_acl = canned
    return result


def fix(
    call: Callable[..., Any],
    bucket: str,
    path: str,
    key: str,
    upload: Mapping[str, str],
    *,
    dry_run: bool,
) -> MetadataFix:
    """Check and fix ``bucket/path`` (the storage's ``key``) through ``call``."""
    head = call("head_object", Bucket=bucket, Key=path)
    acl = call("get_object_acl", Bucket=bucket, Key=path) if "ACL" in upload else None
    found = plan(key, head, upload, acl)
    if found.copy is not None and "ACL" not in upload and not dry_run:
        # Re-plan with the stored grants, which the copy must carry over.
        acl = call("get_object_acl", Bucket=bucket, Key=path)
        found = plan(key, head, upload, acl)
    if not dry_run:
        if found.copy is not None:
            source = {"Bucket": bucket, "Key": path}
            size = int(head.get("ContentLength", 0))
            if size > MAX_COPY:
                _copy_in_parts(call, source, size, head["ETag"], found.copy)
            else:
                call(
                    "copy_object",
                    **source,
                    CopySource=source,
                    CopySourceIfMatch=head["ETag"],  # not an object written meanwhile
                    MetadataDirective="REPLACE",
                    **found.copy,
                )
        elif found.put_acl is not None:
            call("put_object_acl", Bucket=bucket, Key=path, ACL=found.put_acl)
    return MetadataFix(tuple(found.changed), found.skipped)


def _copy_in_parts(
    call: Callable[..., Any],
    source: Mapping[str, str],
    size: int,
    etag: str,
    params: Mapping[str, Any],
) -> None:
    """A copy onto itself of an object over :data:`MAX_COPY`: a multipart upload whose
    parts are ranges of the object copied inside the server (``UploadPartCopy``), carrying
    the new metadata from its creation. The object changes only at the completion; a
    failure aborts the upload and leaves it as it was."""
    upload = call("create_multipart_upload", **source, **params)["UploadId"]
    parts = []
    try:
        for number, start in enumerate(range(0, size, COPY_PART), start=1):
            end = min(start + COPY_PART, size) - 1
            answer = call(
                "upload_part_copy",
                **source,
                UploadId=upload,
                PartNumber=number,
                CopySource=dict(source),
                CopySourceRange=f"bytes={start}-{end}",
                CopySourceIfMatch=etag,
            )
            parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
        call(
            "complete_multipart_upload",
            **source,
            UploadId=upload,
            MultipartUpload={"Parts": parts},
        )
    except BaseException:
        call("abort_multipart_upload", **source, UploadId=upload)
        raise


def _wanted(key: str, head: Mapping[str, Any], upload: Mapping[str, str]) -> dict[str, Any]:
    """The object's metadata as a write now would make it; what the DSN leaves out, as
    stored."""
    wanted: dict[str, Any] = {"Metadata": dict(head.get("Metadata") or {})}
    for name in _KEPT:
        if head.get(name):
            wanted[name] = head[name]
    content_type = guess_type(key) or head.get("ContentType")
    if content_type:
        wanted["ContentType"] = content_type
    for name in ("CacheControl", "StorageClass", "ServerSideEncryption"):
        value = upload.get(name) or _stored(head, name)
        if value is not None:
            wanted[name] = value
    if wanted.get("ServerSideEncryption") == "aws:kms":
        kms = upload.get("SSEKMSKeyId") or head.get("SSEKMSKeyId")
        if kms:
            wanted["SSEKMSKeyId"] = kms
    return wanted


def _stored(head: Mapping[str, Any], name: str) -> Any:
    value = head.get(name)
    if name == "StorageClass" and value is None:
        return "STANDARD"  # HEAD names the class only when it is another
    return value


def _same_kms_key(given: str, stored: object) -> bool:
    """Whether the stored key (HEAD names it by ARN) is the one the DSN gives by ID or ARN.
    An alias cannot be resolved without KMS: taken as the same."""
    if given.startswith("alias/"):
        return True
    return isinstance(stored, str) and (stored == given or stored.endswith(f"/{given}"))


def _has_canned_acl(acl: Mapping[str, Any] | None, canned: str) -> bool:
    """Whether the object's grants are what ``canned`` makes; an ACL we cannot recognise
    (``bucket-owner-read``, ...) is put again."""
    expected = _CANNED_GRANTS.get(canned)
    if acl is None or expected is None:
        return False
    owner = (acl.get("Owner") or {}).get("ID")
    grants = set()
    for grant in acl.get("Grants", []):
        grantee = grant.get("Grantee", {})
        who = grantee.get("URI") or grantee.get("ID")
        if not (who == owner and grant.get("Permission") == "FULL_CONTROL"):
            grants.add((who, grant.get("Permission")))
    return grants == expected


def _acl_params(canned: str | None, acl: Mapping[str, Any] | None) -> dict[str, str]:
    """The copy's ACL: the DSN's, else the stored grants (a copy would make it private)."""
    if canned is not None:
        return {"ACL": canned}
    if acl is None or _has_canned_acl(acl, "private"):
        return {}  # what a copy makes anyway (and all a bucket without ACLs allows)
    by_permission: dict[str, list[str]] = {}
    for grant in acl.get("Grants", []):
        grantee = grant.get("Grantee", {})
        param = _GRANT_PARAMS.get(grant.get("Permission", ""))
        if param is None:  # WRITE: meaningless on an object, refused in a copy
            continue
        if grantee.get("URI"):
            who = f'uri="{grantee["URI"]}"'
        elif grantee.get("ID"):
            who = f'id="{grantee["ID"]}"'
        elif grantee.get("EmailAddress"):
            who = f'emailAddress="{grantee["EmailAddress"]}"'
        else:
            continue
        by_permission.setdefault(param, []).append(who)
    return {param: ", ".join(who) for param, who in by_permission.items()}
