"""The built-in schemes, one module (S3: one package) per backend family.

Each module holds everything about its backend (DSN grammar, backend, URLs, how ``check``
describes it) and exports its :class:`~storage_dsn.schemes.base.Scheme` values as
``SCHEMES``; the registry registers :data:`BUILTIN`. Importing this package imports no
backend: each module parses DSNs with the standard library and imports its fsspec
implementation only when a storage is first used.
"""

from __future__ import annotations

from . import azure, gcs, local, memory, s3, sftp
from .base import Scheme

__all__ = ["BUILTIN", "Scheme"]

#: Every built-in scheme, in the order they are registered.
BUILTIN: tuple[Scheme, ...] = (
    *local.SCHEMES,
    *memory.SCHEMES,
    *s3.SCHEMES,
    *gcs.SCHEMES,
    *azure.SCHEMES,
    *sftp.SCHEMES,
)
