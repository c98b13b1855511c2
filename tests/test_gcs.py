"""GCS beyond the storage contract: public URLs, conditional creates, credentials kept out of
errors, and the ways to point gcsfs at an emulator, against fake-gcs-server."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import traceback
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from storage_dsn import Storage, open_storage
from storage_dsn.cli import main
from storage_dsn.dsn import secret_values
from storage_dsn.registry import get_scheme
from tests.servers.gcs import FakeGCS, GCSProxy
from tests.test_storage import KEYS
from tests.upload_paths import write_every_way

# A service-account key as Google issues it, made up.
PRIVATE_KEY = "\n".join(
    [
        "-----BEGIN PRIVATE KEY-----",
        "MIIEvgIBADANBgkqhkiG9w0BAQEFAAS-made-up",
        "-----END PRIVATE KEY-----",
        "",
    ]
)
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "made-up-project",
    "private_key_id": "0123456789abcdef0123456789abcdef01234567",
    "private_key": PRIVATE_KEY,
    "client_email": "media@made-up-project.iam.gserviceaccount.com",
    "client_id": "109876543210987654321",
    "token_uri": "http://127.0.0.1:9/token",
}
RAW_TOKEN = "ya29.a0AfB_made-up-access-token-0123456789"


@pytest.fixture
def gcs(fake_gcs: FakeGCS) -> Callable[..., Storage]:
    """Build a storage on a fresh bucket of the emulator, with extra query parameters."""

    def build(query: str = "", host: str | None = None) -> Storage:
        dsn = f"gs+http://{host or fake_gcs.host}/{fake_gcs.new_bucket()}/media/"
        return open_storage(f"{dsn}?{query}" if query else dsn)

    return build


class TestEmulatorForms:
    def test_public_urls_serve_the_objects(self, gcs: Callable[..., Storage]) -> None:
        """gs+http's default public URL is the emulator's, which serves each object."""
        storage = gcs()
        for i, key in enumerate(KEYS):
            storage.write_bytes(key, f"data {i}".encode())
        for i, key in enumerate(KEYS):
            with urllib.request.urlopen(storage.url(key), timeout=10) as response:
                assert response.read() == f"data {i}".encode()

    def test_endpoint_url(self, fake_gcs: FakeGCS) -> None:
        """gs:// with endpoint_url= and option.token=anon talks to that endpoint."""
        bucket = fake_gcs.new_bucket()
        endpoint = quote(fake_gcs.endpoint, safe="")
        storage = open_storage(f"gs://{bucket}/m/?endpoint_url={endpoint}&option.token=anon")
        storage.write_bytes("a.txt", b"x")
        assert storage.read_bytes("a.txt") == b"x"
        assert storage.url("a.txt") == f"{fake_gcs.endpoint}/{bucket}/m/a.txt"

    def test_emulator_host_from_the_environment(self, fake_gcs: FakeGCS) -> None:
        """STORAGE_EMULATOR_HOST in the storage's environment sends gs:// there."""
        bucket = fake_gcs.new_bucket()
        environ = {"STORAGE_EMULATOR_HOST": fake_gcs.host}
        storage = open_storage(f"gs://{bucket}/m/?option.token=anon", environ=environ)
        storage.write_bytes("a.txt", b"x")
        with urllib.request.urlopen(f"{fake_gcs.endpoint}/{bucket}/m/a.txt") as response:
            assert response.read() == b"x"

    def test_check_rows(self, capsys: pytest.CaptureFixture[str]) -> None:
        """check says where a GCS storage is and where its credentials come from."""
        assert main(["check", "gs+http://127.0.0.1:4443/bkt/m/"]) == 0
        assert "anonymous" in capsys.readouterr().out  # not masked as a token
        scheme = get_scheme("gs+http")
        rows = dict(scheme.describe(open_storage("gs+http://127.0.0.1:4443/bkt/m/").config))
        assert rows["endpoint"] == "http://127.0.0.1:4443"
        assert rows["credentials"] == "anonymous"
        rows = dict(scheme.describe(open_storage("gs://bkt/?option.token=%2Fk.json").config))
        assert rows["endpoint"] == "https://storage.googleapis.com"
        assert rows["credentials"] == "option.token"
        assert "k.json" not in str(rows)


class TestObjects:
    def test_md5_from_metadata(self, gcs: Callable[..., Storage]) -> None:
        """md5() is the stored md5Hash, in hex."""
        storage = gcs()
        storage.write_bytes("a.bin", b"some bytes")
        assert storage.backend.md5("a.bin", storage.stat("a.bin")) == (
            hashlib.md5(b"some bytes", usedforsecurity=False).hexdigest()
        )

    def test_missing_bucket_names_the_key(self, fake_gcs: FakeGCS) -> None:
        """An error from gcsfs names the key, not a request URL."""
        storage = open_storage(f"gs+http://{fake_gcs.host}/no-such-bucket/m/")
        with pytest.raises(FileNotFoundError) as info:
            storage.read_bytes("a.txt")
        assert info.value.filename == "a.txt"
        assert "storage/v1" not in str(info.value)


def object_resource(fake_gcs: FakeGCS, storage: Storage, key: str) -> dict[str, Any]:
    """The stored object's resource, from the emulator's JSON API (not through the storage)."""
    bucket, _, prefix = storage.config.root.partition("/")
    name = quote(f"{prefix}/{key}", safe="")
    with urllib.request.urlopen(f"{fake_gcs.endpoint}/storage/v1/b/{bucket}/o/{name}") as r:
        found: dict[str, Any] = json.load(r)
    return found


class TestUploadSettings:
    def test_cache_control_on_every_write_path(self, fake_gcs: FakeGCS, tmp_path: Path) -> None:
        """cache_control= and the guessed Content-Type are the object's stored metadata,
        whichever way it was written."""
        dsn = (
            f"gs+http://{fake_gcs.host}/{fake_gcs.new_bucket()}/media/"
            "?cache_control=public%2C%20max-age%3D60"
        )
        storage = open_storage(dsn)
        expected = write_every_way(storage, dsn, tmp_path)
        for key, content_type in expected.items():
            resource = object_resource(fake_gcs, storage, key)
            assert resource.get("cacheControl") == "public, max-age=60", key
            assert resource["contentType"] == content_type, key


class TestConditionalCreate:
    def test_sent_on_both_upload_kinds(
        self, gcs: Callable[..., Storage], gcs_proxy: GCSProxy, tmp_path: Path
    ) -> None:
        """overwrite=False sends ifGenerationMatch=0 on one-request and resumable uploads."""
        storage = gcs(host=gcs_proxy.host)
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(6 * 1024 * 1024))  # gcsfs uploads 5 MiB+ files resumably
        storage.save("small.txt", io.BytesIO(b"x"), overwrite=False)
        with big.open("rb") as f:
            storage.save("big.bin", f, overwrite=False)
        uploads = [path for method, path in gcs_proxy.requests if path.startswith("/upload/")]
        assert any("uploadType=multipart" in p and "ifGenerationMatch=0" in p for p in uploads)
        assert any("uploadType=resumable" in p and "ifGenerationMatch=0" in p for p in uploads)

    def test_resumable_refusal(
        self, gcs: Callable[..., Storage], gcs_proxy: GCSProxy, tmp_path: Path
    ) -> None:
        """Where GCS refuses a resumable create (the emulator does not), the key is kept."""
        storage = gcs(host=gcs_proxy.host)
        storage.write_bytes("big.bin", b"old")
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(6 * 1024 * 1024))
        with big.open("rb") as f, pytest.raises(FileExistsError, match=r"big\.bin"):
            storage.save("big.bin", f, overwrite=False)
        with pytest.raises(FileExistsError), storage.open("big.bin", "xb") as out:
            out.write(os.urandom(9 * 1024 * 1024))  # spills to a file: a resumable upload
        assert storage.read_bytes("big.bin") == b"old"


def _assert_clean(error: BaseException, secrets: list[str]) -> None:
    message = str(error)
    assert "\n" not in message
    assert len(message) < 300
    shown = message + repr(error) + "".join(traceback.format_exception(error))
    for secret in secrets:
        assert secret not in shown
        assert quote(secret, safe="") not in shown


OPS = {
    "write_bytes": lambda s: s.write_bytes("a.txt", b"y"),
    "read_bytes": lambda s: s.read_bytes("a.txt"),
    "list": lambda s: list(s.list()),
}


class TestCredentialsStayOutOfErrors:
    """gcsfs loads credentials when its filesystem is built, and some of its failures
    carry the token in their text: none of it reaches the caller."""

    @pytest.mark.parametrize("op", sorted(OPS))
    def test_service_account_key_that_does_not_load(
        self, gcs: Callable[..., Storage], op: str
    ) -> None:
        """A JSON key in option.token that does not load is a PermissionError."""
        token = quote(json.dumps(SERVICE_ACCOUNT), safe="")
        storage = gcs(f"option.token={token}")
        with pytest.raises(PermissionError) as info:
            OPS[op](storage)
        secrets = [SERVICE_ACCOUNT["private_key"], SERVICE_ACCOUNT["private_key_id"]]
        _assert_clean(info.value, [*secrets, *secret_values(storage.config)])

    @pytest.mark.parametrize("op", sorted(OPS))
    def test_key_file_that_is_not_one(
        self, gcs: Callable[..., Storage], op: str, tmp_path: Path
    ) -> None:
        """A key file that is not a key is a PermissionError that does not name it."""
        path = tmp_path / "secret-key-file.json"
        path.write_text("not a key: s3cr3t-c0ntent")
        storage = gcs(f"option.token={quote(str(path), safe='')}")
        with pytest.raises(PermissionError) as info:
            OPS[op](storage)
        _assert_clean(info.value, [str(path), "s3cr3t-c0ntent"])

    @pytest.mark.parametrize("op", sorted(OPS))
    def test_raw_token_that_cannot_be_checked(
        self, gcs: Callable[..., Storage], op: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """gcsfs checks a raw access token at Google's tokeninfo endpoint, and requests puts
        ``?access_token=...`` in its error: here its proxy is a closed loopback port."""
        for name in ("FETCH_RAW_TOKEN_EXPIRY", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
        from gcsfs import credentials

        storage = gcs(f"option.token={RAW_TOKEN}")
        if not hasattr(credentials, "_get_creds_from_raw_token"):
            # gcsfs before 2025 sends a raw token unchecked: nothing fails but a read.
            with contextlib.suppress(FileNotFoundError):
                OPS[op](storage)
            return
        with pytest.raises(PermissionError, match="ProxyError") as info:
            OPS[op](storage)
        _assert_clean(info.value, [RAW_TOKEN])

    @pytest.mark.parametrize("op", sorted(OPS))
    def test_server_that_echoes_the_token(
        self,
        gcs: Callable[..., Storage],
        gcs_proxy: GCSProxy,
        op: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A 403 whose message repeats the bearer token is shown with the token masked."""
        monkeypatch.setenv("FETCH_RAW_TOKEN_EXPIRY", "false")  # no tokeninfo request
        storage = gcs(f"option.token={RAW_TOKEN}", host=gcs_proxy.host)
        gcs_proxy.echo_token = True
        with pytest.raises(PermissionError, match="HTTP 403") as info:
            OPS[op](storage)
        assert "may not do this" in str(info.value)
        _assert_clean(info.value, [RAW_TOKEN])
