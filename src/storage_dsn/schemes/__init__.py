"""The built-in schemes, one module per backend family.

Importing this package imports no backend: each module parses DSNs with the standard
library and imports its fsspec implementation only when a storage is first used.
"""

from __future__ import annotations

from ..registry import register_scheme
from . import azure, gcs, local, memory, s3, sftp

__all__ = ["register_builtins"]


def register_builtins() -> None:
    """Register every built-in scheme (the registry calls this once, and on reset)."""
    register_scheme("file", local.parse_file, params=local.PARAMS, backend=local.LocalBackend)
    register_scheme("memory", memory.parse_memory, backend=memory.MemoryBackend)
    for name in ("s3", "s3+http"):
        register_scheme(
            name,
            s3.parse_s3,
            params=s3.PARAMS,
            extra="s3",
            requires=("s3fs",),
            backend=s3.backend,
            requires_for=s3.requirements,
        )
    for name in ("gs", "gcs"):
        register_scheme(name, gcs.parse_gcs, params=gcs.PARAMS, extra="gcs", requires=("gcsfs",))
    for name in ("az", "abfs"):
        register_scheme(name, azure.parse_azure, extra="azure", requires=("adlfs",))
    register_scheme(
        "sftp", sftp.parse_sftp, extra="sftp", requires=("sshfs",), backend=sftp.SFTPBackend
    )
