"""``s3:`` and ``s3+http:`` storages on Amazon S3 and S3-compatible services.

Everything about S3 is in this package:

* :mod:`.parse`: the DSN grammar (host forms, parameters) into a config;
* :mod:`.location`: bucket, prefix, region, endpoint, URL style and credentials, read back
  from a config;
* :mod:`.presign`: SigV4/SigV2 presigned URLs (reads, uploads), computed locally;
* :mod:`.post`: POST policies for browser upload forms;
* :mod:`.s3fs_engine` and :mod:`.obstore_engine`: the two backends (``engine=``).

This module ties them into the two :class:`~storage_dsn.schemes.base.Scheme` values.
Importing it imports neither s3fs nor obstore, nor the engine or signing modules: each is
imported when a storage first needs it, so a ``storage-dsn cat`` starts in milliseconds.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ...backend import Backend
from ...dsn import StorageConfig, with_param
from ...errors import StorageDSNError
from ...urls import Clock, Urls
from ..base import Scheme
from .location import S3Location, location, upload_settings
from .parse import PARAMS, parse_s3

if TYPE_CHECKING:
    from .obstore_engine import ObstoreBackend
    from .s3fs_engine import S3Backend

__all__ = [
    "SCHEMES",
    "ObstoreBackend",
    "S3Backend",
    "S3Location",
    "backend",
    "details",
    "location",
    "parse_s3",
    "requirements",
    "transfer_dsn",
    "urls",
]


def __getattr__(name: str) -> type[ObstoreBackend | S3Backend]:
    # The engines are imported on first use (the backend a DSN asks for, or this name).
    if name == "ObstoreBackend":
        from .obstore_engine import ObstoreBackend

        return ObstoreBackend
    if name == "S3Backend":
        from .s3fs_engine import S3Backend

        return S3Backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def engine(config: StorageConfig) -> str:
    """The config's engine: ``s3fs`` unless the DSN says ``engine=obstore``."""
    return str(config.settings.get("engine", "s3fs"))


def requirements(config: StorageConfig) -> list[tuple[str, str | None]]:
    """The (module, extra) pairs an S3 storage needs: its engine's."""
    if engine(config) == "obstore":
        return [("obstore", "obstore")]
    return [("s3fs", "s3")]


def backend(config: StorageConfig, *, environ: Mapping[str, str] = os.environ) -> Backend:
    """The S3 backend for the config's engine."""
    if engine(config) == "obstore":
        from .obstore_engine import ObstoreBackend

        return ObstoreBackend(config, environ=environ)
    from .s3fs_engine import S3Backend

    return S3Backend(config, environ=environ)


def urls(config: StorageConfig, environ: Mapping[str, str], clock: Clock) -> Urls:
    """The storage's public and presigned URLs (:mod:`.presign`, imported on first use)."""
    from .presign import s3_urls

    return s3_urls(config, environ, clock)


def details(config: StorageConfig) -> list[tuple[str, str]]:
    """Rows for ``storage-dsn check``: where the bucket is and how it is addressed."""
    loc = location(config)
    rows = [
        ("bucket", loc.bucket),
        ("prefix", loc.prefix or "(none)"),
        ("region", loc.region),
        ("endpoint", loc.endpoint),
        ("style", "path" if loc.path_style else "virtual host"),
    ]
    public = config.settings.get("public_endpoint_url")
    if public is not None:
        rows.append(("public endpoint", str(public)))
    upload = upload_settings(config)
    if upload:
        rows.append(("upload settings", ", ".join(f"{k}={v}" for k, v in upload.items())))
    return rows


def transfer_dsn(config: StorageConfig) -> str | None:
    """The DSN with ``engine=obstore`` when that is installed and the DSN allows it.

    A transfer is bytes in and out, and obstore costs about a tenth of s3fs's CPU per
    request (BENCHMARKS.md). A DSN that names an engine keeps it; one that obstore cannot
    honour (``acl=``, ``auth=s3``) stays on s3fs.
    """
    if "engine" in config.settings or importlib.util.find_spec("obstore") is None:
        return None
    if "ACL" in upload_settings(config):
        return None
    if config.options.get("config_kwargs", {}).get("signature_version") == "s3":
        return None
    try:
        dsn = config.to_dsn()
    except StorageDSNError:  # a config built by hand: keep it as it is
        return None
    return with_param(dsn, "engine", "obstore")


SCHEMES = tuple(
    Scheme(
        name=name,
        parse=parse_s3,
        params=PARAMS,
        extra="s3",
        requires=("s3fs",),
        backend=backend,
        requires_for=requirements,
        urls=urls,
        details=details,
        transfer_dsn=transfer_dsn,
    )
    for name in ("s3", "s3+http")
)
