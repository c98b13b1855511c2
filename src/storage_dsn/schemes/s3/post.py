"""S3 POST policies: the form fields and conditions of a browser upload form.

The policy says what S3 accepts from the form: the bucket, the key (or a key prefix, the
browser's file name appended by S3 as ``${filename}``), the content type (or its major
type), a size range, and the storage's upload settings, which the form must carry as
fields. Its conditions are those boto3's ``generate_presigned_post`` writes when given the
same fields and conditions, in the same order, so S3 sees one familiar document.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _json

from ...errors import StorageDSNError
from ...urls import check_content_type
from .location import S3Location

__all__ = ["MAX_POST_SIZE", "PostPolicy", "conditions", "content_type_prefix"]

#: S3 takes at most 5 GiB in one POST.
MAX_POST_SIZE = 5 * 2**30
# The form field each upload setting travels in (boto3's name -> S3's field).
FORM_FIELDS = {
    "ACL": "acl",
    "CacheControl": "Cache-Control",
    "StorageClass": "x-amz-storage-class",
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id",
}
_TYPE_PREFIX = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+/)\*?")


class PostPolicy:
    """The POST policies of one bucket location, with its upload settings."""

    def __init__(self, loc: S3Location, upload: Mapping[str, str]) -> None:
        #: Where forms post to: the bucket's URL (path style: ``ENDPOINT/BUCKET``).
        self.url = loc.origin() + (
            f"/{loc.bucket}" if loc.path_style and loc.access_point is None else "/"
        )
        self._bucket = loc.bucket
        self._prefix = f"{loc.prefix}/" if loc.prefix else ""
        self._fields = {FORM_FIELDS[name]: value for name, value in upload.items()}
        settings = conditions(self._fields)
        self._policy_head = f"{settings}, " if settings else ""
        self._bucket_condition = f'{{"bucket": {_json(self._bucket)}}}, '
        self._typed: dict[str, tuple[str, str]] = {}

    def _type(self, content_type: str) -> tuple[str, str]:
        """``content_type`` checked: the form's Content-Type field (empty for a prefix) and
        the policy's condition, kept for the next form (an app uses a handful of types)."""
        prefix = content_type_prefix(content_type)
        if prefix is None:  # that exact type
            typed = (
                check_content_type(content_type),
                f'{{"Content-Type": {_json(content_type)}}}, ',
            )
        else:  # the browser sends the file's own type, which must start so
            typed = ("", f'["starts-with", "$Content-Type", {_json(prefix)}], ')
        if len(self._typed) < 256:
            self._typed[content_type] = typed
        return typed

    def fields(
        self,
        key: str,
        *,
        expiration: str,
        max_size: int | None,
        content_type: str | None,
        auth: Mapping[str, str],
        auth_conditions: str,
    ) -> dict[str, str]:
        """The form's fields for ``key`` (validated), ``policy`` included, signature not.

        ``expiration`` is ISO 8601 UTC; ``auth`` the signature fields (algorithm,
        credential, date, token), which are conditions too: ``auth_conditions`` is
        :func:`conditions` of them.
        """
        fields = dict(self._fields)
        # The policy is written as json.dumps writes it (boto3 calls that), condition by
        # condition, each followed by ", ": the settings' are the same on every call.
        policy = self._policy_head
        if content_type is not None:
            known = self._typed.get(content_type) if type(content_type) is str else None
            field, condition = known or self._type(content_type)
            if field:
                fields["Content-Type"] = field
            policy += condition
        if max_size is not None:
            policy += f'["content-length-range", 0, {_max_size(max_size)}], '
        # What generate_presigned_post adds itself: the bucket, the key, the signer.
        name = self._prefix + key
        if key.endswith("/"):
            policy += f'{self._bucket_condition}["starts-with", "$key", {_json(name)}], '
            fields["key"] = name + "${filename}"
        else:
            policy += f'{self._bucket_condition}{{"key": {_json(name)}}}, '
            fields["key"] = name
        fields.update(auth)
        policy = f'{{"expiration": {_json(expiration)}, "conditions": [{policy}{auth_conditions}]}}'
        fields["policy"] = binascii.b2a_base64(policy.encode(), newline=False).decode()
        return fields


def conditions(fields: Mapping[str, str]) -> str:
    """Exact-match conditions on ``fields``, in a policy's JSON (``{"acl": "private"}, ...``)."""
    return ", ".join(f"{{{_json(name)}: {_json(value)}}}" for name, value in fields.items())


def content_type_prefix(content_type: str) -> str | None:
    """``image/`` for ``image/`` or ``image/*`` (any image), ``None`` for a full type."""
    if not isinstance(content_type, str) or not content_type.endswith(("/", "/*")):
        return None
    match = _TYPE_PREFIX.fullmatch(content_type)
    if match is None:
        raise StorageDSNError(
            f"content_type must be a media type (image/png) or a major type (image/ or "
            f"image/*), not {content_type!r}"
        )
    return match.group(1)


def _max_size(max_size: object) -> int:
    if type(max_size) is not int or not 0 <= max_size <= MAX_POST_SIZE:
        raise StorageDSNError(
            f"max_size must be bytes (an int) from 0 to {MAX_POST_SIZE} (5 GiB, S3's limit "
            f"for a POST), not {max_size!r}"
        )
    return max_size
