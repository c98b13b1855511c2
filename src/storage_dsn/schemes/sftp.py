"""``sftp:`` storages on an SSH server, via sshfs.

``sftp://user:pass@host:22/abs/path/``. Writes go to a temporary name and are renamed
into place, so a reader never sees half a file.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from ..errors import InvalidDSNError
from .base import Scheme
from .generic import FsspecBackend

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


class SFTPBackend(FsspecBackend):
    """sshfs, with each write uploaded to a temporary name and renamed over the key."""

    def _put_bytes(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        temp = self._temp_for(path)
        self.base.pipe_file(temp, data)
        self._publish(temp, path, exclusive)

    def _put_file(self, local: str, path: str, *, exclusive: bool = False) -> None:
        temp = self._temp_for(path)
        self.base.put_file(local, temp)
        self._publish(temp, path, exclusive)

    def _publish(self, temp: str, path: str, exclusive: bool) -> None:
        try:
            self._refuse_existing(path, exclusive)
        except FileExistsError:
            self.base.rm_file(temp)
            raise
        self.base.mv(temp, path)

    @staticmethod
    def _temp_for(path: str) -> str:
        head, _, _ = path.rpartition("/")
        return f"{head}/.storage-dsn-{secrets.token_hex(8)}.tmp"


SCHEMES = (
    Scheme(name="sftp", parse=parse_sftp, extra="sftp", requires=("sshfs",), backend=SFTPBackend),
)
