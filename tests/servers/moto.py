"""moto's S3: in-process under ``mock_aws`` (``mock_s3``), and as a server in its own process
on a free loopback port (``moto_server``), with the credentials every S3 test uses."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from . import free_port, running
from .moto_mock import aio_mock_aws

__all__ = ["KEY_ID", "QUOTED_SECRET", "SECRET", "make_bucket", "mock_s3", "moto_server"]

KEY_ID = "AKIAEXAMPLEKEYID0001"
#: A secret with the characters that need percent-encoding in a DSN.
SECRET = "s3cr3t/With+Plus=AndSlash"
QUOTED_SECRET = quote(SECRET, safe="")


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
