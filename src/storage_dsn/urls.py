"""URL resolvers: the shape every scheme's URLs take, and the public-base one they share.

A resolver is ``resolver(key, expires)``: it validates ``key``
(:func:`~storage_dsn.keys.quoted_key`) and returns its URL, doing string work only (no
network, no new client, no re-parsing). A storage builds its resolver once, through its
scheme (:meth:`storage_dsn.schemes.base.Scheme.resolver`):

* ``url=`` or ``domain=`` (or the scheme's default base): ``base + quote_key(key)``;
* signed URLs are the scheme's own (S3's presigners live in :mod:`storage_dsn.schemes.s3`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import NoPublicURLError
from .keys import quoted_key, validate_key

if TYPE_CHECKING:
    from .dsn import StorageConfig

__all__ = ["Clock", "Resolver", "public_resolver"]

#: ``resolver(key, expires)`` validates ``key`` and returns its URL.
Resolver = Callable[[str, "int | None"], str]
#: Seconds since the epoch, as :func:`time.time` gives them (tests pass a fixed clock).
Clock = Callable[[], float]


def public_resolver(config: StorageConfig) -> Resolver:
    """``config.public_url`` plus the quoted key; :class:`NoPublicURLError` without a base."""
    base = config.public_url
    if base is None:
        return _no_url(config)

    def public(key: str, expires: int | None = None) -> str:
        return base + quoted_key(key)

    return public


def _no_url(config: StorageConfig) -> Resolver:
    message = (
        f"the {config.scheme!r} storage has no public URL; add url= (a percent-encoded path "
        "like url=%2Fmedia%2F, or https%3A%2F%2Fcdn.example.org%2Fmedia%2F) or "
        "domain=cdn.example.org to its DSN"
    )

    def no_url(key: str, expires: int | None = None) -> str:
        validate_key(key)
        raise NoPublicURLError(message)

    return no_url
