"""Media storage for twelve-factor Python apps, from one DSN.

``open_storage()`` reads ``DEFAULT_STORAGE_DSN`` and returns a :class:`Storage` over a real
fsspec filesystem (local files, memory, S3, GCS, Azure, SFTP) with public URLs for its keys.
"""

from __future__ import annotations

from .dsn import StorageConfig
from .errors import (
    ConfigurationError,
    InvalidDSNError,
    InvalidKeyError,
    MissingBackendError,
    NoPublicURLError,
    StorageDSNError,
    UnknownSchemeError,
)
from .registry import parse_dsn, register_scheme
from .storage import Stat, Storage, open_storage
from .urls import UploadForm

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "InvalidDSNError",
    "InvalidKeyError",
    "MissingBackendError",
    "NoPublicURLError",
    "Stat",
    "Storage",
    "StorageConfig",
    "StorageDSNError",
    "UnknownSchemeError",
    "UploadForm",
    "open_storage",
    "parse_dsn",
    "register_scheme",
]
