"""Shared fixtures: a clean registry per test, and storages on every backend.

S3 runs twice: in-process under moto's ``mock_aws`` (see ``moto_aio.py``), and over real
HTTP against a moto server in its own process on a free loopback port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage_dsn import Storage, open_storage, registry, storage
from tests.moto_aio import aio_mock_aws
from tests.servers import free_port, running

KEY_ID = "AKIAEXAMPLEKEYID0001"
SECRET = "s3cr3t/With+Plus=AndSlash"
QUOTED_SECRET = "s3cr3t%2FWith%2BPlus%3DAndSlash"


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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server in its own process on a free loopback port; yields its endpoint."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with running(argv, port, env=env, **quiet):
        yield f"http://127.0.0.1:{port}"


def make_bucket(endpoint: str | None, region: str = "us-east-1") -> str:
    import boto3

    name = f"t-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    kwargs: dict[str, Any] = {}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    client.create_bucket(Bucket=name, **kwargs)
    return name


@pytest.fixture
def mock_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process mock, serving boto3 and s3fs alike."""
    with aio_mock_aws(monkeypatch):
        yield


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
