"""The public surface: __all__ is exactly the public names, and importing is cheap."""

from __future__ import annotations

import subprocess
import sys

import storage_dsn


def test_all_is_the_public_names() -> None:
    """__all__ lists every public name of the package, sorted, and nothing else."""
    public = {
        name
        for name, value in vars(storage_dsn).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("storage_dsn.")
    }
    assert set(storage_dsn.__all__) == public
    assert storage_dsn.__all__ == sorted(storage_dsn.__all__)


def test_contract_names() -> None:
    """The names the design contract promises are importable from the package."""
    for name in ("open_storage", "parse_dsn", "register_scheme", "Storage", "StorageConfig"):
        assert name in storage_dsn.__all__
    assert issubclass(storage_dsn.StorageDSNError, ValueError)
    for name in (
        "InvalidDSNError",
        "UnknownSchemeError",
        "MissingBackendError",
        "InvalidKeyError",
        "NoPublicURLError",
        "ConfigurationError",
    ):
        assert issubclass(getattr(storage_dsn, name), storage_dsn.StorageDSNError)


def test_import_pulls_in_no_backend() -> None:
    """import storage_dsn and parsing a DSN import neither fsspec, s3fs, flask nor botocore."""
    code = (
        "import sys, storage_dsn;"
        "storage_dsn.parse_dsn('s3://K:S@b.s3.amazonaws.com/?qs_auth=true');"
        "storage_dsn.open_storage('s3://K:S@b.s3.amazonaws.com/?qs_auth=true').url('a');"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fsspec', 's3fs', 'flask', 'botocore', 'aiobotocore', 'boto3')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
