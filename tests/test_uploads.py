"""Direct uploads and signed reads against real S3 servers, and the DSN's upload settings
on every write path.

What each server proves: SeaweedFS checks SigV4 signatures (the Host included), signed
headers, expiry and every POST policy condition, and honours ``response-*`` overrides; it
keeps Cache-Control and the storage class. moto checks neither signatures nor policies,
but stores what an upload asked for (Cache-Control, storage class, SSE, ACL), so the
settings are proved there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from storage_dsn import Storage, UploadForm, open_storage
from storage_dsn.schemes.s3 import location
from storage_dsn.urls import content_disposition
from tests.conftest import KEY_ID, QUOTED_SECRET, SECRET

pytestmark = pytest.mark.s3

TIMEOUT = 10
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def client_for(storage: Storage) -> Any:
    import boto3

    where = location(storage.config)
    return boto3.client(
        "s3",
        endpoint_url=where.endpoint,
        region_name=where.region,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


def head(storage: Storage, key: str) -> dict[str, Any]:
    """The stored object's metadata, asked by boto3 (not through the storage)."""
    where = location(storage.config)
    found: dict[str, Any] = client_for(storage).head_object(
        Bucket=where.bucket, Key=f"{where.prefix}/{key}"
    )
    return found


def post(form: UploadForm, data: bytes, filename: str, **extra: str) -> requests.Response:
    """The multipart POST a browser sends for ``form`` (``extra`` fields added or replaced)."""
    fields = {**form.fields, **extra}
    return requests.post(
        form.url,
        data=fields,
        files={"file": (filename, data, extra.get("Content-Type", "application/octet-stream"))},
        timeout=TIMEOUT,
    )


@pytest.fixture
def weed(storage_factory: Callable[..., Storage]) -> Storage:
    """A fresh place on SeaweedFS."""
    return storage_factory("s3-seaweedfs")


# --- SeaweedFS: what a server that checks signatures accepts and refuses -------------------


class TestUploadUrlOnSeaweedFS:
    def test_put_with_the_signed_type(self, weed: Storage) -> None:
        """A PUT with the signed Content-Type stores the bytes and the type."""
        url = weed.upload_url("up/a b.png", content_type="image/png")
        response = requests.put(
            url, data=PNG, headers={"Content-Type": "image/png"}, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        assert weed.read_bytes("up/a b.png") == PNG
        assert weed.stat("up/a b.png").content_type == "image/png"

    def test_put_with_another_type_is_refused(self, weed: Storage) -> None:
        """The server refuses a PUT whose Content-Type is not the signed one."""
        url = weed.upload_url("up/a.png", content_type="image/png")
        response = requests.put(
            url, data=b"<h1>", headers={"Content-Type": "text/html"}, timeout=TIMEOUT
        )
        assert response.status_code == 403
        assert not weed.exists("up/a.png")

    def test_put_to_another_key_is_refused(self, weed: Storage) -> None:
        url = weed.upload_url("up/a.png")
        response = requests.put(url.replace("/a.png?", "/b.png?"), data=PNG, timeout=TIMEOUT)
        assert response.status_code == 403
        assert not weed.exists("up/b.png")

    def test_expired_url_is_refused(self, weed: Storage) -> None:
        from storage_dsn.storage import make_resolver

        earlier = make_resolver(weed.config, clock=lambda: time.time() - 120)
        response = requests.put(earlier.upload_url("up/a.png", 60), data=PNG, timeout=TIMEOUT)
        assert response.status_code == 403
        assert not weed.exists("up/a.png")

    def test_upload_settings_are_signed_and_stored(
        self, storage_factory: Callable[..., Storage]
    ) -> None:
        """cache_control and storage_class travel as signed headers the browser must send."""
        storage = storage_factory(
            "s3-seaweedfs", "cache_control=public%2C%20max-age%3D60&storage_class=STANDARD_IA"
        )
        url = storage.upload_url("a.png", content_type="image/png")
        headers = {"Content-Type": "image/png", "Cache-Control": "public, max-age=60"}
        refused = requests.put(url, data=PNG, headers=headers, timeout=TIMEOUT)
        assert refused.status_code == 403  # without x-amz-storage-class: not what was signed
        headers["x-amz-storage-class"] = "STANDARD_IA"
        response = requests.put(url, data=PNG, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        stored = head(storage, "a.png")
        assert stored["CacheControl"] == "public, max-age=60"
        assert stored["StorageClass"] == "STANDARD_IA"


class TestUploadFormOnSeaweedFS:
    def test_post_under_a_prefix(self, weed: Storage) -> None:
        """A form for a prefix stores the browser's file name under it."""
        form = weed.upload_form("avatars/", max_size=len(PNG), content_type="image/")
        assert form.fields["key"].endswith("/media/avatars/${filename}")
        response = post(form, PNG, "ünï cat.png", **{"Content-Type": "image/png"})
        assert response.status_code in (200, 201, 204), response.text
        assert weed.read_bytes("avatars/ünï cat.png") == PNG
        assert weed.stat("avatars/ünï cat.png").content_type == "image/png"

    def test_post_of_one_key(self, weed: Storage) -> None:
        form = weed.upload_form("doc.pdf", content_type="application/pdf")
        response = post(form, b"%PDF-1.7", "whatever.pdf", **{"Content-Type": "application/pdf"})
        assert response.status_code in (200, 201, 204), response.text
        assert weed.read_bytes("doc.pdf") == b"%PDF-1.7"

    def test_over_max_size_is_refused(self, weed: Storage) -> None:
        form = weed.upload_form("avatars/", max_size=100)
        response = post(form, PNG, "big.png")
        assert response.status_code == 400
        assert list(weed.list("avatars/")) == []

    @pytest.mark.parametrize(
        ("allowed", "sent"), [("image/", "text/html"), ("image/png", "image/gif")]
    )
    def test_wrong_type_is_refused(self, weed: Storage, allowed: str, sent: str) -> None:
        form = weed.upload_form("avatars/", content_type=allowed)
        response = post(form, PNG, "a.png", **{"Content-Type": sent})
        assert response.status_code == 403
        assert list(weed.list("avatars/")) == []

    def test_name_outside_the_prefix_is_refused(self, weed: Storage) -> None:
        form = weed.upload_form("avatars/")
        outside = form.fields["key"].replace("avatars/", "other/")
        response = post(form, PNG, "a.png", key=outside)
        assert response.status_code == 403
        assert list(weed.list("")) == []

    def test_tampered_policy_is_refused(self, weed: Storage) -> None:
        form = weed.upload_form("avatars/", max_size=10)
        other = weed.upload_form("avatars/", max_size=10**6)
        response = post(form, PNG, "a.png", policy=other.fields["policy"])
        assert response.status_code == 403
        assert list(weed.list("")) == []


class TestReadsOnSeaweedFS:
    @pytest.mark.parametrize("name", ["report.pdf", 'Übersicht "März" 2026.pdf', "日本.txt"])
    def test_download_name(self, weed: Storage, name: str) -> None:
        """The server answers with the signed Content-Disposition and type."""
        weed.write_bytes("files/r.bin", b"data")
        url = weed.url("files/r.bin", download_name=name, content_type="application/pdf")
        response = requests.get(url, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        assert response.content == b"data"
        assert response.headers["Content-Disposition"] == content_disposition(name)
        assert response.headers["Content-Type"] == "application/pdf"

    def test_tampered_override_is_refused(self, weed: Storage) -> None:
        weed.write_bytes("r.bin", b"data")
        url = weed.url("r.bin", content_type="text/plain")
        response = requests.get(url.replace("text%2Fplain", "text%2Fhtml"), timeout=TIMEOUT)
        assert response.status_code == 403


class TestPublicEndpoint:
    def test_urls_are_signed_for_the_public_host(self, seaweedfs: Any) -> None:
        """I/O goes to 127.0.0.1; URLs go to localhost, signed for it, and work there only."""
        port = seaweedfs.host.rpartition(":")[2]
        place = seaweedfs.new_prefix()
        storage = open_storage(
            f"s3+http://{KEY_ID}:{QUOTED_SECRET}@127.0.0.1:{port}/{place}/"
            f"?public_endpoint_url=http%3A%2F%2Flocalhost%3A{port}"
        )
        storage.write_bytes("a.txt", b"hello")  # through the storage's own endpoint
        get = storage.url("a.txt", download_name="a.txt")
        assert get.startswith(f"http://localhost:{port}/{place}/a.txt?")
        assert requests.get(get, timeout=TIMEOUT).content == b"hello"
        moved = get.replace(f"//localhost:{port}", f"//127.0.0.1:{port}")
        assert requests.get(moved, timeout=TIMEOUT).status_code == 403  # the host is signed
        put = storage.upload_url("b.txt")
        assert requests.put(put, data=b"up", timeout=TIMEOUT).status_code == 200
        form = storage.upload_form("c/")
        assert form.url == f"http://localhost:{port}/{place.partition('/')[0]}"
        assert post(form, b"form", "c.txt").status_code in (200, 201, 204)
        assert storage.read_bytes("b.txt") == b"up"
        assert storage.read_bytes("c/c.txt") == b"form"


# --- moto: the upload settings reach the stored object -------------------------------------

SETTINGS = "cache_control=public%2C%20max-age%3D31536000&storage_class=STANDARD_IA&sse=AES256"


def _write_paths(storage: Storage, tmp_path: Path, engine: str) -> dict[str, str | None]:
    """Write one object by each write path; return {key: expected content type}.

    s3fs's own calls (``Storage.fs``) send the settings too, but guess no type.
    """
    storage.write_bytes("write_bytes.png", PNG)
    storage.save("save-stream.jpg", _Stream(PNG))
    local = tmp_path / "local.bin"
    local.write_bytes(PNG)
    with local.open("rb") as f:
        storage.save("save-file.gif", f)
    with storage.open("open.txt", "wb") as f:
        f.write(b"text")
    storage.write_many({"many/a.css": b"a{}", "many/b.js": b"1"})
    keys: dict[str, str | None] = {
        "write_bytes.png": "image/png",
        "save-stream.jpg": "image/jpeg",
        "save-file.gif": "image/gif",
        "open.txt": "text/plain",
        "many/a.css": "text/css",
        "many/b.js": "text/javascript",
    }
    if engine == "s3fs":
        storage.fs.pipe_file("fs-pipe.html", b"<p>")
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * (11 * 2**20))
        storage.fs.put_file(str(big), "fs-multipart.bin", chunksize=5 * 2**20)
        keys["fs-pipe.html"] = keys["fs-multipart.bin"] = None
    return keys


class _Stream:
    """A non-seekable file object: the streaming save path."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, n: int = -1) -> bytes:
        chunk, self._data = (self._data, b"") if n < 0 else (self._data[:n], self._data[n:])
        return chunk

    def seekable(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("kind", "engine"),
    [("s3-mock", "s3fs"), ("s3-server", "s3fs"), ("s3-obstore", "obstore")],
)
def test_settings_on_every_write_path(
    storage_factory: Callable[..., Storage], tmp_path: Path, kind: str, engine: str
) -> None:
    """Cache-Control, storage class and SSE reach every object, with the guessed type."""
    storage = storage_factory(kind, SETTINGS)
    for key, content_type in _write_paths(storage, tmp_path, engine).items():
        stored = head(storage, key)
        assert stored["CacheControl"] == "public, max-age=31536000", key
        assert stored["StorageClass"] == "STANDARD_IA", key
        assert stored["ServerSideEncryption"] == "AES256", key
        if content_type is not None:
            assert stored["ContentType"] == content_type, key


@pytest.mark.parametrize(("kind", "engine"), [("s3-server", "s3fs"), ("s3-obstore", "obstore")])
def test_kms_settings(storage_factory: Callable[..., Storage], kind: str, engine: str) -> None:
    storage = storage_factory(kind, "sse=aws%3Akms&sse_kms_key_id=alias%2Fmedia")
    storage.write_bytes("a.txt", b"secret-ish")
    stored = head(storage, "a.txt")
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["SSEKMSKeyId"].endswith("alias/media")


def test_obstore_multipart_upload_keeps_settings(
    storage_factory: Callable[..., Storage], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """obstore's multipart path sends the settings as its single PUT does."""
    from storage_dsn.schemes.s3 import obstore_engine

    monkeypatch.setattr(obstore_engine, "SINGLE_PUT", 1024)
    storage = storage_factory("s3-obstore", SETTINGS)
    local = tmp_path / "big.png"
    local.write_bytes(b"x" * (6 * 2**20))
    with local.open("rb") as f:
        storage.save("big.png", f)
    stored = head(storage, "big.png")
    assert (stored["CacheControl"], stored["StorageClass"]) == (
        "public, max-age=31536000",
        "STANDARD_IA",
    )
    assert stored["ServerSideEncryption"] == "AES256"
    assert stored["ContentType"] == "image/png"
    assert "-" in stored["ETag"]  # it was a multipart upload


def public_read(storage: Storage, key: str) -> bool:
    """Whether the stored object's ACL lets everyone read it."""
    where = location(storage.config)
    acl = client_for(storage).get_object_acl(Bucket=where.bucket, Key=f"{where.prefix}/{key}")
    return any(
        g["Permission"] == "READ" and g["Grantee"].get("URI", "").endswith("/AllUsers")
        for g in acl["Grants"]
    )


def test_acl_on_every_s3fs_write(storage_factory: Callable[..., Storage], tmp_path: Path) -> None:
    storage = storage_factory("s3-server", "acl=public-read")
    for key in _write_paths(storage, tmp_path, "s3fs"):
        assert public_read(storage, key), key


def test_upload_url_settings_on_moto(storage_factory: Callable[..., Storage]) -> None:
    """A browser PUT with the signed headers stores what the DSN asks (SSE and ACL too)."""
    storage = storage_factory("s3-server", SETTINGS + "&acl=public-read")
    url = storage.upload_url("u.png", content_type="image/png")
    headers = {
        "Content-Type": "image/png",
        "Cache-Control": "public, max-age=31536000",
        "x-amz-storage-class": "STANDARD_IA",
        "x-amz-server-side-encryption": "AES256",
        "x-amz-acl": "public-read",
    }
    assert requests.put(url, data=PNG, headers=headers, timeout=TIMEOUT).status_code == 200
    stored = head(storage, "u.png")
    assert stored["ServerSideEncryption"] == "AES256"
    assert stored["StorageClass"] == "STANDARD_IA"
    assert stored["ContentType"] == "image/png"
    assert public_read(storage, "u.png")


def test_upload_form_settings_on_moto(storage_factory: Callable[..., Storage]) -> None:
    """The form's fields carry the settings; moto stores the ACL and Cache-Control of a
    POST (it ignores a POST's storage class and SSE fields, and checks no policy)."""
    storage = storage_factory("s3-server", SETTINGS + "&acl=public-read")
    form = storage.upload_form("f/", content_type="image/png")
    assert form.fields["x-amz-server-side-encryption"] == "AES256"
    assert form.fields["x-amz-storage-class"] == "STANDARD_IA"
    response = post(form, PNG, f"{uuid.uuid4().hex}.png", **{"Content-Type": "image/png"})
    assert response.status_code in (200, 201, 204), response.text
    (key,) = storage.list("f/")
    stored = head(storage, key)
    assert stored["CacheControl"] == "public, max-age=31536000"
    assert stored["ContentType"] == "image/png"
    assert public_read(storage, key)


def test_form_settings_on_seaweedfs(storage_factory: Callable[..., Storage]) -> None:
    """SeaweedFS checks the settings' fields against the policy and keeps Cache-Control."""
    storage = storage_factory("s3-seaweedfs", "cache_control=no-cache")
    form = storage.upload_form("f/")
    refused = post(form, PNG, "a.png", **{"Cache-Control": "max-age=9"})
    assert refused.status_code == 403
    response = post(form, PNG, "a.png")
    assert response.status_code in (200, 201, 204), response.text
    assert head(storage, "f/a.png")["CacheControl"] == "no-cache"
