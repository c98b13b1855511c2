"""``storage-dsn check --public``: a probe fetched anonymously, as a browser would.

moto enforces object ACLs and bucket policies on anonymous GETs (403 without either).
SeaweedFS, as the suite starts it, lets anonymous clients read and ignores canned ACLs,
but enforces a bucket policy that denies reads; Azurite refuses anonymous reads of a
private container; fake-gcs-server serves every object.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from storage_dsn import Storage
from storage_dsn.cli import main
from storage_dsn.cli.public import PROBE_PREFIX
from tests.conftest import KEY_ID, KINDS, QUOTED_SECRET, SECRET
from tests.servers.seaweedfs import SeaweedFS


def check(dsn: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--public", dsn])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert SECRET not in text
    assert QUOTED_SECRET not in text
    return code, text


def dsn_of(storage: Storage) -> str:
    return storage.config.to_dsn()


def no_probe_left(storage: Storage) -> None:
    assert not [key for key in storage.list() if key.startswith(PROBE_PREFIX)]


class TestS3:
    def test_private_objects_are_refused(
        self, storage_factory: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without acl= or a bucket policy moto answers 403: exit 1 with both fixes."""
        storage = storage_factory("s3-server")
        code, text = check(dsn_of(storage), capsys)
        assert code == 1
        assert "HTTP 403" in text
        assert "acl=public-read" in text
        assert "put-bucket-policy" in text
        assert '"Action":"s3:GetObject"' in text
        assert "storage-dsn update-metadata" in text
        no_probe_left(storage)

    def test_public_read_acl(
        self, storage_factory: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """acl=public-read: the probe is public, a browser can load it."""
        storage = storage_factory("s3-server", "acl=public-read")
        code, text = check(dsn_of(storage), capsys)
        assert code == 0, text
        assert "a browser can load it" in text
        no_probe_left(storage)

    def test_presigned_urls(
        self, storage_factory: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """qs_auth=true: the signed URL loads (SeaweedFS checks its signature), and the
        signature is not printed."""
        storage = storage_factory("s3-seaweedfs", "qs_auth=true")
        code, text = check(dsn_of(storage), capsys)
        assert code == 0, text
        assert "through a signed URL" in text
        assert "X-Amz-Signature" not in text

    def test_bucket_policy(
        self, storage_factory: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bucket policy allowing s3:GetObject to everyone is enough."""
        from tests.test_uploads import client_for

        storage = storage_factory("s3-server")
        bucket = storage.config.root.partition("/")[0]
        statement = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        client_for(storage).put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        code, text = check(dsn_of(storage), capsys)
        assert code == 0, text

    def test_seaweedfs_anonymous_read(
        self, storage_factory: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """SeaweedFS configured for anonymous reads serves the probe."""
        storage = storage_factory("s3-seaweedfs")
        code, text = check(dsn_of(storage), capsys)
        assert code == 0, text
        no_probe_left(storage)

    def test_seaweedfs_bucket_policy(
        self, seaweedfs: SeaweedFS, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """SeaweedFS enforces bucket policies on anonymous GETs: with one that denies
        s3:GetObject the probe is refused (403, the fix printed), without it, it loads."""
        bucket = seaweedfs.new_bucket()
        statement = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        client: Any = seaweedfs.client()
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{seaweedfs.host}/{bucket}/media/"
        code, text = check(dsn, capsys)
        assert code == 1
        assert "HTTP 403" in text
        assert "put-bucket-policy" in text
        client.delete_bucket_policy(Bucket=bucket)
        code, text = check(dsn, capsys)
        assert code == 0, text

    def test_wrong_url_is_404(
        self,
        request: pytest.FixtureRequest,
        tmp_path: Path,
        moto_server: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A url= pointing at another bucket: 404, the url=/domain= parameter is wrong."""
        other = quote(f"{moto_server}/no-such-bucket-here/", safe="")
        dsn = KINDS["s3-server"](request, tmp_path) + f"?acl=public-read&url={other}"
        code, text = check(dsn, capsys)
        assert code == 1
        assert "HTTP 404" in text
        assert "url= or domain=" in text

    def test_unreachable_host(
        self, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A public host nobody answers on: the host cannot be reached."""
        with socket.socket() as s:  # a port that was free: nothing listens on it
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = quote(f"http://127.0.0.1:{port}/media/", safe="")
        dsn = KINDS["s3-server"](request, tmp_path) + f"?url={url}"
        code, text = check(dsn, capsys)
        assert code == 1
        assert f"cannot reach 127.0.0.1:{port}" in text


class TestOtherBackends:
    def test_azure_private_then_public_container(
        self, storage_factory: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Azurite refuses anonymous reads of a private container (403, with the Azure
        fix); once the container allows public blob access, a browser can load it."""
        from tests.servers.azurite import blob_service

        storage = storage_factory("azure")
        code, text = check(dsn_of(storage), capsys)
        assert code == 1
        assert "HTTP 403" in text
        assert "--public-access blob" in text
        assert "qs_auth=true" in text
        no_probe_left(storage)
        container = storage.config.root.partition("/")[0]
        service = blob_service(storage.config.settings["endpoint_url"])
        service.get_container_client(container).set_container_access_policy(
            signed_identifiers={}, public_access="blob"
        )
        code, text = check(dsn_of(storage), capsys)
        assert code == 0, text

    def test_gcs_emulator(
        self, storage_factory: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """fake-gcs-server serves every object anonymously at the storage's URL."""
        storage = storage_factory("gcs")
        code, text = check(dsn_of(storage), capsys)
        assert code == 0, text
        no_probe_left(storage)

    def test_local_path_url_is_served_by_the_app(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """file: with url=/media/: served by the app, nothing to fetch, nothing written."""
        code, text = check(f"file://{tmp_path}/media/?url=%2Fmedia%2F", capsys)
        assert code == 0
        assert "the app serves them" in text
        assert not (tmp_path / "media").exists()

    def test_no_public_url(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """file: without url=: there is no public URL at all."""
        code, text = check(f"file://{tmp_path}/media/", capsys)
        assert code == 1
        assert "FAILED" in text
