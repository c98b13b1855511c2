"""Key validation and URL encoding.

A key is a relative POSIX path naming one object inside a storage's root. Every
:class:`~storage_dsn.Storage` method validates its keys here before any I/O, so no key,
whatever its spelling, can reach outside the root: there is no ``..`` to resolve, no
absolute path or drive letter to jump to, no backslash that Windows would read as a
separator, and no control character to confuse a log or a terminal.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from .errors import InvalidKeyError

__all__ = ["MAX_KEY_BYTES", "quote_key", "validate_key", "validate_prefix"]

#: S3's limit on a key, in UTF-8 bytes; applied to every backend so a key that works
#: locally also works in the cloud.
MAX_KEY_BYTES = 1024

# C0 controls, DEL and the C1 controls: none has a place in a file name, and several
# (NUL, CR, LF, ESC) are the raw material of truncation, header and log injection.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def validate_key(key: object) -> str:
    """Return ``key`` if it is a safe object key, else raise :class:`InvalidKeyError`.

    A safe key is a non-empty ``str`` of at most 1024 UTF-8 bytes, made of ``/``-separated
    segments none of which is empty, ``.`` or ``..``; with no backslash, no control
    character, and no leading ``/`` or drive letter.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"a key must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidKeyError("a key must not be empty")
    _check_text(key)
    if key.endswith("/"):
        raise InvalidKeyError("a key must not end with '/' (that names a directory)")
    _check_segments(key.split("/"))
    return key


def validate_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is a safe listing prefix, else raise :class:`InvalidKeyError`.

    The empty string (the whole storage) and a trailing ``/`` are allowed; otherwise the
    rules of :func:`validate_key` apply.
    """
    if not isinstance(prefix, str):
        raise InvalidKeyError(f"a prefix must be a str, not {type(prefix).__name__}")
    if not prefix:
        return prefix
    _check_text(prefix)
    _check_segments(prefix.removesuffix("/").split("/"))
    return prefix


def quote_key(key: str) -> str:
    """Percent-encode ``key`` as an S3 canonical URI path.

    RFC 3986 unreserved characters and ``/`` stay; every other byte of the UTF-8 key
    becomes ``%XX``: ``a b/ü.txt`` gives ``a%20b/%C3%BC.txt``.
    """
    return quote(key, safe="/")


def _check_text(key: str) -> None:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKeyError("a key must be valid Unicode (it has a lone surrogate)") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(f"a key must be at most {MAX_KEY_BYTES} UTF-8 bytes, not {size}")
    if _CONTROL.search(key):
        raise InvalidKeyError("a key must not contain NUL or other control characters")
    if "\\" in key:
        raise InvalidKeyError("a key must not contain a backslash; use '/' between segments")
    if key.startswith("/"):
        raise InvalidKeyError("a key must be relative, not start with '/'")
    if _DRIVE.match(key):
        raise InvalidKeyError("a key must not start with a drive letter")


def _check_segments(segments: list[str]) -> None:
    for segment in segments:
        if segment in ("", ".", ".."):
            shown = "an empty segment ('//')" if not segment else f"a {segment!r} segment"
            raise InvalidKeyError(f"a key must not contain {shown}")
