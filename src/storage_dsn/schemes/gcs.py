"""``gs:`` and ``gcs:`` storages on Google Cloud Storage, via gcsfs.

``gs://bucket/prefix/?project=P``: credentials come from the environment (Application
Default Credentials) or ``option.token``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InvalidDSNError
from ..keys import quote_key
from .base import Scheme

if TYPE_CHECKING:
    from ..dsn import DSNParts, StorageConfig

__all__ = ["PARAMS", "SCHEMES", "parse_gcs"]

PARAMS = frozenset({"project"})


def parse_gcs(parts: DSNParts) -> StorageConfig:
    """Parse a ``gs:`` or ``gcs:`` DSN."""
    if parts.username is not None or parts.port is not None:
        raise InvalidDSNError(
            "a GCS DSN is gs://bucket/prefix/; credentials come from the environment or "
            "option.token, not the user part"
        )
    if not parts.host:
        raise InvalidDSNError("a GCS DSN needs a bucket: gs://bucket/prefix/")
    prefix = "/".join(s for s in parts.path.split("/") if s)
    options = {}
    if "project" in parts.params:
        options["project"] = parts.params["project"]
    root = f"{parts.host}/{prefix}".rstrip("/")
    default_url = f"https://storage.googleapis.com/{quote_key(root)}/"
    return parts.config(
        protocol="gcs",
        root=root,
        options=options,
        public_url=parts.public_base(prefix) or default_url,
    )


SCHEMES = tuple(
    Scheme(name=name, parse=parse_gcs, params=PARAMS, extra="gcs", requires=("gcsfs",))
    for name in ("gs", "gcs")
)
