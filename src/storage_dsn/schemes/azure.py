"""``az:`` and ``abfs:`` storages on Azure Blob Storage, via adlfs.

``az://ACCOUNT:KEY_OR_BASE64_SAS@blob.core.windows.net/container/prefix/``. The password is
either the account key or, as Divio's platform issues it, a SAS token encoded in base64
(told apart by decoding it: a SAS token carries ``sig=``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING

from ..errors import InvalidDSNError
from ..keys import quote_key
from .base import Scheme

if TYPE_CHECKING:
    from ..dsn import DSNParts, StorageConfig

__all__ = ["SCHEMES", "parse_azure"]

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")


def parse_azure(parts: DSNParts) -> StorageConfig:
    """Parse an ``az:`` or ``abfs:`` DSN."""
    host = parts.host
    account = parts.username
    if host.endswith(".blob.core.windows.net") and host != "blob.core.windows.net":
        account = account or host.removesuffix(".blob.core.windows.net")
    elif host != "blob.core.windows.net":
        raise InvalidDSNError(
            "an Azure DSN is az://ACCOUNT:KEY@blob.core.windows.net/container/prefix/"
        )
    if not account or not _ACCOUNT.match(account):
        raise InvalidDSNError("an Azure DSN needs the storage account name (3-24 a-z, 0-9)")
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        raise InvalidDSNError("an Azure DSN needs a container as the first path segment")
    options: dict[str, str] = {"account_name": account}
    if parts.password:
        sas = _sas_token(parts.password)
        if sas is not None:
            options["sas_token"] = sas
        else:
            options["account_key"] = parts.password
    root = "/".join(segments)
    prefix = "/".join(segments[1:])
    default_url = f"https://{account}.blob.core.windows.net/{quote_key(root)}/"
    return parts.config(
        protocol="abfs",
        root=root,
        options=options,
        public_url=parts.public_base(prefix) or default_url,
    )


def _sas_token(password: str) -> str | None:
    """The SAS token inside a base64 password, or ``None`` when it is an account key."""
    if "sig=" in password:
        return password.lstrip("?")
    try:
        decoded = base64.b64decode(password, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decoded.lstrip("?") if "sig=" in decoded else None


SCHEMES = tuple(
    Scheme(name=name, parse=parse_azure, extra="azure", requires=("adlfs",))
    for name in ("az", "abfs")
)
