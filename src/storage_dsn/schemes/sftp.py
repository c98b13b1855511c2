"""``sftp:`` storages on an SSH server, via sshfs.

``sftp://user:pass@host:22/abs/path/``. Writes go to a temporary name and are renamed
into place, so a reader never sees half a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InvalidDSNError
from .base import Scheme
from .generic import RenamingBackend

if TYPE_CHECKING:
    from ..dsn import DSNParts, StorageConfig

__all__ = ["SCHEMES", "SFTPBackend", "parse_sftp"]


def parse_sftp(parts: DSNParts) -> StorageConfig:
    """Parse an ``sftp:`` DSN."""
    if not parts.host:
        raise InvalidDSNError("an SFTP DSN needs a host: sftp://user:pass@host:22/abs/path/")
    options: dict[str, Any] = {"host": parts.host, "port": parts.port or 22}
    if parts.username:
        options["username"] = parts.username
    if parts.password:
        options["password"] = parts.password
    root = "/" + "/".join(s for s in parts.path.split("/") if s)
    return parts.config(
        protocol="sftp", root=root, options=options, public_url=parts.public_base("")
    )


class SFTPBackend(RenamingBackend):
    """sshfs, with each write uploaded to a temporary name and renamed over the key."""


SCHEMES = (
    Scheme(name="sftp", parse=parse_sftp, extra="sftp", requires=("sshfs",), backend=SFTPBackend),
)
