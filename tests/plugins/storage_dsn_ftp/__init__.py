"""storage-dsn-ftp: ``ftp://`` storages, a third-party scheme for storage-dsn.

The complete example of docs/extending.md. It ships as its own distribution and declares
its scheme in the ``storage_dsn.schemes`` entry-point group, so an app opens
``ftp://user:password@host:21/path/`` without importing this package. It uses fsspec's FTP
filesystem (standard library ``ftplib``), so it needs no package beyond storage-dsn.
"""

from __future__ import annotations

from storage_dsn import InvalidDSNError, StorageConfig
from storage_dsn.dsn import DSNParts, flag
from storage_dsn.registry import Scheme
from storage_dsn.schemes.generic import RenamingBackend

__all__ = ["SCHEME", "FTPBackend", "details", "parse_ftp"]


def parse_ftp(parts: DSNParts) -> StorageConfig:
    """``ftp://[user[:password]@]host[:port]/path/[?tls=true]``: a directory on an FTP server."""
    if not parts.host:
        raise InvalidDSNError("an FTP DSN needs a host: ftp://user:password@host:21/path/")
    if parts.password and not parts.username:
        raise InvalidDSNError("an FTP DSN with a password needs a user name")
    options = {"host": parts.host, "port": parts.port or 21, "tls": flag(parts.params, "tls")}
    if parts.username:
        options["username"] = parts.username
        options["password"] = parts.password or ""
    root = "/" + "/".join(s for s in parts.path.split("/") if s)
    return parts.config(
        protocol="ftp", root=root, options=options, public_url=parts.public_base("")
    )


class FTPBackend(RenamingBackend):
    """fsspec's FTP filesystem; an FTP upload is visible while it is written, so each
    write goes to a temporary name and is renamed over the key (RenamingBackend)."""


def details(config: StorageConfig) -> list[tuple[str, str]]:
    """Rows for ``storage-dsn check``: where the server is and how it is reached."""
    options = config.options
    return [
        ("server", f"{options['host']}:{options['port']}"),
        ("user", str(options.get("username", "anonymous"))),
        ("TLS", "yes" if options["tls"] else "no (the password crosses the network in clear)"),
    ]


SCHEME = Scheme(
    name="ftp",
    parse=parse_ftp,
    params=frozenset({"tls"}),
    backend=FTPBackend,
    details=details,
)
