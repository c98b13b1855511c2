"""Shared fixtures: a clean registry per test, and storages on every backend.

S3 runs in-process under moto's ``mock_aws`` and over real HTTP against a moto server in
its own process on a free loopback port; the servers are in ``tests/servers/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage_dsn import Storage, open_storage, registry, storage
from tests.apps import app
from tests.servers.ftp import ftp_server
from tests.servers.moto import KEY_ID, QUOTED_SECRET, SECRET, make_bucket, mock_s3, moto_server

__all__ = [
    "KEY_ID",
    "QUOTED_SECRET",
    "SECRET",
    "app",
    "ftp_server",
    "make_bucket",
    "mock_s3",
    "moto_server",
    "write_then_fail",
]


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with only the built-in schemes, no cached storage, no real AWS."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "DEFAULT_STORAGE_DSN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    registry._reset()
    storage.clear_cache()
    yield
    registry._reset()
    storage.clear_cache()


BACKENDS = ["file", "memory", "s3-mock", "s3-server", "s3-obstore"]


@pytest.fixture(params=BACKENDS)
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """A fresh, empty storage on each backend."""
    return request.getfixturevalue("storage_factory")(request.param)


@pytest.fixture
def storage_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Storage]:
    """Build a fresh storage of a kind (``file``, ``memory``, ``s3-mock``, ``s3-server``,
    ``s3-obstore``)."""

    def build(kind: str, query: str = "") -> Storage:
        if kind == "file":
            dsn = f"file://{tmp_path}/media/?url=%2Fmedia%2F"
        elif kind == "memory":
            dsn = f"memory://{uuid.uuid4().hex}/media/?url=%2Fmedia%2F"
        elif kind == "s3-mock":
            request.getfixturevalue("mock_s3")
            bucket = make_bucket(None)
            dsn = f"s3://{KEY_ID}:{QUOTED_SECRET}@{bucket}.s3.amazonaws.com/media/"
        elif kind in ("s3-server", "s3-obstore"):
            # obstore talks HTTP itself: only the moto server can answer it, not mock_aws.
            endpoint = request.getfixturevalue("moto_server")
            bucket = make_bucket(endpoint)
            host = endpoint.removeprefix("http://")
            dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{host}/{bucket}/media/"
            if kind == "s3-obstore":
                dsn += "?engine=obstore"
        else:  # pragma: no cover
            raise ValueError(kind)
        if query:
            dsn += ("&" if "?" in dsn else "?") + query
        return open_storage(dsn)

    return build


def write_then_fail(storage: Storage, key: str, data: bytes) -> None:
    with storage.open(key, "wb") as f:
        f.write(data)
        raise RuntimeError("crash")
