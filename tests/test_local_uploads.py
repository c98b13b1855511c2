"""Local direct uploads: S3-shaped PUT URLs and POST forms on the media blueprint, signed
with the app's SECRET_KEY; through Flask's test client, then under a real gunicorn."""

from __future__ import annotations

import http.client
import io
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from storage_dsn import NoPublicURLError, StorageDSNError, UploadForm
from storage_dsn.backend import is_temp
from storage_dsn.flask import Media
from storage_dsn.uploads import MAX_UPLOAD_NAME
from tests.apps import assert_secure, make_app
from tests.servers.gunicorn import gunicorn

SECRET = "upload-test-secret"
MEDIA = Media.__new__(Media)  # any Media object acts for the current app


def upload_app(tmp_path: Path, dsn: str | None = None, **config: Any) -> Flask:
    config.setdefault("SECRET_KEY", SECRET)
    return make_app(tmp_path, STORAGE_DSN=dsn or f"file://{tmp_path}/up/?url=%2Fmedia%2F", **config)


def url_for_put(app: Flask, key: str, **options: Any) -> str:
    with app.app_context():
        return MEDIA.upload_url(key, **options)


def form_for(app: Flask, key: str, **options: Any) -> UploadForm:
    with app.app_context():
        return MEDIA.upload_form(key, **options)


def post(app: Flask, form: UploadForm, body: bytes, filename: str, **fields: str) -> Any:
    data: dict[str, Any] = {**form.fields, **fields, "file": (io.BytesIO(body), filename)}
    return app.test_client().post(form.url, data=data, content_type="multipart/form-data")


def stored(app: Flask) -> dict[str, bytes]:
    storage = app.extensions["storage_dsn"].storage
    return {key: storage.read_bytes(key) for key in storage.list()}


def no_temporary_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if is_temp(p.name)]


class TestPut:
    def test_round_trip(self, tmp_path: Path) -> None:
        """A signed PUT stores the body (204); the blueprint then serves it."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "a b/ü.png")
        assert url.startswith("/media/a%20b/%C3%BC.png?policy=")
        r = app.test_client().put(url, data=b"png bytes", content_type="image/png")
        assert r.status_code == 204
        assert_secure(r)
        assert app.test_client().get("/media/a%20b/%C3%BC.png").data == b"png bytes"

    def test_overwrites(self, tmp_path: Path) -> None:
        """As on S3, a PUT replaces the object."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "a.txt")
        for body in (b"first", b"second"):
            assert app.test_client().put(url, data=body).status_code == 204
        assert stored(app) == {"a.txt": b"second"}

    def test_content_type(self, tmp_path: Path) -> None:
        """A signed type must be the one declared; parameters do not matter."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "doc.txt", content_type="text/plain")
        client = app.test_client()
        assert client.put(url, data=b"x", content_type="text/html").status_code == 403
        assert client.put(url, data=b"x", content_type="").status_code == 403
        assert (
            client.put(url, data=b"x", content_type="text/plain; charset=utf-8").status_code == 204
        )

    def test_type_of_the_name(self, tmp_path: Path) -> None:
        """A key whose extension serves another type than the granted one is refused."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "page.html", content_type="image/png")
        r = app.test_client().put(url, data=b"<script>", content_type="image/png")
        assert r.status_code == 403
        assert stored(app) == {}

    @pytest.mark.parametrize("size", [11, 64 * 1024 + 1, 3 * 1024 * 1024])
    def test_too_large(self, tmp_path: Path, size: int) -> None:
        """Past max_size is 413 and nothing is stored, no temporary file left."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "big.bin", max_size=10)
        r = app.test_client().put(url, data=b"x" * size)
        assert r.status_code == 413
        assert stored(app) == {}
        assert no_temporary_files(tmp_path / "up")
        assert app.test_client().put(url, data=b"x" * 10).status_code == 204

    def test_too_large_without_length(self, tmp_path: Path) -> None:
        """A streamed body (no Content-Length) is counted while it is read."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "big.bin", max_size=100_000)
        chunked = {"CONTENT_LENGTH": "", "wsgi.input_terminated": True}
        client = app.test_client()
        r = client.put(url, data=b"x" * 300_000, environ_overrides=chunked)
        assert r.status_code == 413
        assert stored(app) == {}
        r = client.put(url, data=b"y" * 100_000, environ_overrides=chunked)
        assert r.status_code == 204
        assert stored(app) == {"big.bin": b"y" * 100_000}

    def test_length_required(self, tmp_path: Path) -> None:
        """Neither a length nor a server-terminated stream: 411."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "a.bin")
        r = app.test_client().put(url, data=b"x", environ_overrides={"CONTENT_LENGTH": ""})
        assert r.status_code == 411

    def test_short_body(self, tmp_path: Path) -> None:
        """A body shorter than its Content-Length is 400 and stores nothing."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "a.bin")
        r = app.test_client().put(url, data=b"12345", environ_overrides={"CONTENT_LENGTH": "10"})
        assert r.status_code == 400
        assert stored(app) == {}
        assert no_temporary_files(tmp_path / "up")

    def test_tampered(self, tmp_path: Path) -> None:
        """Any change to the token, or a token for another key, is 403."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "a.txt", max_size=10)
        path, _, token = url.partition("?policy=")
        payload, _, signature = token.partition(".")
        other = url_for_put(app, "b.txt").partition("?")[2]
        middle = len(signature) // 2  # the last character has unused bits: not there
        flipped = (
            signature[:middle]
            + ("A" if signature[middle] != "A" else "B")
            + signature[middle + 1 :]
        )
        client = app.test_client()
        for bad in (
            f"{path}?policy={payload}.{flipped}",
            f"{path}?policy={payload}",
            f"{path}?policy=",
            f"{path}?{other}",
            f"/media/b.txt?policy={token}",
        ):
            assert client.put(bad, data=b"x").status_code == 403, bad
        assert stored(app) == {}

    def test_other_secret(self, tmp_path: Path) -> None:
        """A token signed with another app's secret is 403."""
        app = upload_app(tmp_path)
        other = upload_app(tmp_path / "other", SECRET_KEY="another secret")
        assert app.test_client().put(url_for_put(other, "a.txt"), data=b"x").status_code == 403

    def test_key_rotation(self, tmp_path: Path) -> None:
        """Tokens signed with a key now among SECRET_KEY_FALLBACKS still work."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "a.txt")
        app.config.update(SECRET_KEY="new", SECRET_KEY_FALLBACKS=[SECRET])
        assert app.test_client().put(url, data=b"x").status_code == 204
        app.config.update(SECRET_KEY_FALLBACKS=[])
        assert app.test_client().put(url, data=b"x").status_code == 403

    def test_expired(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Past its expiry a token is 403 (the clock moved, no sleeping)."""
        app = upload_app(tmp_path)
        url = url_for_put(app, "a.txt", expires=60)
        uploads = app.extensions["storage_dsn"].uploads
        monkeypatch.setattr(uploads, "clock", lambda: time.time() + 61)
        r = app.test_client().put(url, data=b"x")
        assert r.status_code == 403
        assert b"expired" in r.data
        monkeypatch.setattr(uploads, "clock", lambda: time.time() + 30)
        assert app.test_client().put(url, data=b"x").status_code == 204

    def test_form_token_is_not_a_put(self, tmp_path: Path) -> None:
        """A form's policy does not sign a PUT, even to its exact key."""
        app = upload_app(tmp_path)
        token = form_for(app, "a.txt").fields["policy"]
        assert app.test_client().put(f"/media/a.txt?policy={token}", data=b"x").status_code == 403

    def test_unsigned_is_405(self, tmp_path: Path) -> None:
        """Without a signature a PUT is what it was: 405 with Allow."""
        app = upload_app(tmp_path)
        r = app.test_client().put("/media/a.txt", data=b"x")
        assert r.status_code == 405
        assert r.headers["Allow"] == "GET, HEAD"

    def test_memory_storage(self, tmp_path: Path) -> None:
        """A memory storage takes uploads through the blueprint view."""
        app = upload_app(tmp_path, f"memory://{uuid.uuid4().hex}/?url=%2Fmedia%2F")
        assert app.test_client().put(url_for_put(app, "m.txt"), data=b"mem").status_code == 204
        assert app.test_client().get("/media/m.txt").data == b"mem"


class TestSigning:
    def test_needs_secret_key(self, tmp_path: Path) -> None:
        """Without SECRET_KEY, asking for an upload URL or form says what to set."""
        app = upload_app(tmp_path, SECRET_KEY=None)
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            url_for_put(app, "a.txt")
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            form_for(app, "a/")

    @pytest.mark.parametrize("key", ["../a.txt", "/abs.txt", ".env", "a/.git/x", "", "a\\b"])
    def test_bad_keys(self, tmp_path: Path, key: str) -> None:
        """Invalid or unservable keys are refused before anything is signed."""
        app = upload_app(tmp_path)
        with pytest.raises(StorageDSNError):
            url_for_put(app, key)
        with pytest.raises(StorageDSNError):
            form_for(app, key + "/" if key else "/")

    def test_bad_options(self, tmp_path: Path) -> None:
        """Types must be media types (a prefix only in forms); sizes and lifetimes sane."""
        app = upload_app(tmp_path)
        with pytest.raises(StorageDSNError):
            url_for_put(app, "a.png", content_type="image/")
        with pytest.raises(StorageDSNError):
            form_for(app, "a/", content_type="image\r\n/png")
        with pytest.raises(ValueError, match="max_size"):
            form_for(app, "a/", max_size=-1)
        with pytest.raises(ValueError, match="expires"):
            url_for_put(app, "a.png", expires=0)

    def test_form_fields(self, tmp_path: Path) -> None:
        """A prefix form names ${filename}; an exact type is a field, a prefix type is not."""
        app = upload_app(tmp_path)
        form = form_for(app, "avatars/", content_type="image/*", max_size=100)
        assert form.url == "/media/"
        assert list(form.fields) == ["key", "policy"]
        assert form.fields["key"] == "avatars/${filename}"
        exact = form_for(app, "a/b.png", content_type="image/png")
        assert list(exact.fields) == ["key", "Content-Type", "policy"]
        assert exact.fields["key"] == "a/b.png"
        assert exact.fields["Content-Type"] == "image/png"

    def test_remote_storages_sign_their_own(self, tmp_path: Path) -> None:
        """A remote storage's upload URL and form are the storage's; max_size on a PUT
        cannot be enforced there, so it is refused."""
        dsn = "s3://AKIAEXAMPLE:secret@bucket.s3.eu-west-1.amazonaws.com/m/?qs_auth=true"
        app = upload_app(tmp_path, dsn)
        storage = app.extensions["storage_dsn"].storage
        assert app.extensions["storage_dsn"].uploads is None
        for method, options in (("upload_url", {}), ("upload_form", {"max_size": 10})):
            try:
                expected: Any = getattr(storage, method)("a.png", expires=60, **options)
            except NoPublicURLError as exc:
                expected = type(exc)
            with app.app_context():
                try:
                    got: Any = getattr(MEDIA, method)("a.png", expires=60, **options)
                except NoPublicURLError as exc:
                    got = type(exc)
            if isinstance(expected, str):  # signed at the same second, or in the next
                assert got.partition("X-Amz-Date")[0] == expected.partition("X-Amz-Date")[0]
            elif isinstance(expected, UploadForm):
                assert got.url == expected.url
                assert got.fields["key"] == expected.fields["key"]
            else:
                assert got is expected
        with app.app_context(), pytest.raises(StorageDSNError, match="upload_form"):
            MEDIA.upload_url("a.png", max_size=10)


class TestPost:
    def test_prefix_form(self, tmp_path: Path) -> None:
        """${filename} becomes the file's name; 204 with the object's Location."""
        app = upload_app(tmp_path)
        form = form_for(app, "avatars/", content_type="image/", max_size=100)
        r = post(app, form, b"\x89PNG", "me é.png", **{"Content-Type": "image/png"})
        assert r.status_code == 204
        assert r.headers["Location"] == "/media/avatars/me%20%C3%A9.png"
        assert_secure(r)
        assert app.test_client().get(r.headers["Location"]).data == b"\x89PNG"

    def test_exact_key(self, tmp_path: Path) -> None:
        """An exact key form stores under that key whatever the file is called."""
        app = upload_app(tmp_path)
        form = form_for(app, "docs/report.pdf", content_type="application/pdf")
        assert post(app, form, b"%PDF", "whatever.pdf").status_code == 204
        assert stored(app) == {"docs/report.pdf": b"%PDF"}

    @pytest.mark.parametrize(
        ("change", "status"),
        [
            ({"key": "other/x.png"}, 403),
            ({"key": "avatars/../x.png"}, 400),
            ({"key": "avatars/.htaccess"}, 400),
            ({"key": "avatars/"}, 400),
            ({"Content-Type": "text/html"}, 403),
            ({"Content-Type": ""}, 403),
            ({"acl": "public-read"}, 403),
            ({"success_action_status": "201"}, 403),
        ],
        ids=lambda v: str(v),
    )
    def test_policy_conditions(self, tmp_path: Path, change: dict[str, str], status: int) -> None:
        """Fields that break the policy are refused, and nothing is stored."""
        app = upload_app(tmp_path)
        form = form_for(app, "avatars/", content_type="image/", max_size=100)
        fields = {"Content-Type": "image/png", **change}
        assert post(app, form, b"img", "a.png", **fields).status_code == status
        assert stored(app) == {}

    def test_missing_type_field(self, tmp_path: Path) -> None:
        """A type prefix needs the page to send the file's Content-Type field."""
        app = upload_app(tmp_path)
        form = form_for(app, "avatars/", content_type="image/")
        assert post(app, form, b"img", "a.png").status_code == 403

    def test_type_field_not_in_policy(self, tmp_path: Path) -> None:
        """As on S3, a Content-Type field the policy does not name is an extra field."""
        app = upload_app(tmp_path)
        form = form_for(app, "any/")
        assert post(app, form, b"x", "a.txt", **{"Content-Type": "text/plain"}).status_code == 403
        assert post(app, form, b"x", "a.txt").status_code == 204

    def test_ignored_fields(self, tmp_path: Path) -> None:
        """x-ignore-* fields are ignored, and so is anything after the file, as on S3."""
        app = upload_app(tmp_path)
        form = form_for(app, "any/")
        body = (
            b"--B\r\n"
            + b'Content-Disposition: form-data; name="key"\r\n\r\nany/${filename}\r\n--B\r\n'
            + b'Content-Disposition: form-data; name="x-ignore-note"\r\n\r\nhi\r\n--B\r\n'
            + b'Content-Disposition: form-data; name="policy"\r\n\r\n'
            + form.fields["policy"].encode()
            + b"\r\n--B\r\n"
            + b'Content-Disposition: form-data; name="file"; filename="f.txt"\r\n'
            + b"Content-Type: text/plain\r\n\r\nhello\r\n--B\r\n"
            + b'Content-Disposition: form-data; name="after"\r\n\r\nignored\r\n--B--\r\n'
        )
        r = app.test_client().post(
            "/media/", data=body, content_type="multipart/form-data; boundary=B"
        )
        assert r.status_code == 204
        assert stored(app) == {"any/f.txt": b"hello"}

    @pytest.mark.parametrize(
        "filename",
        [
            "../x.txt",
            "a/b.txt",
            "a\\\\b.txt",  # the header escapes it: the name has one backslash
            ".htaccess",
            "..",
            "x" * (MAX_UPLOAD_NAME - 3) + ".txt",
        ],
        ids=["dotdot", "slash", "backslash", "dotfile", "parent", "too-long"],
    )
    def test_bad_file_names(self, tmp_path: Path, filename: str) -> None:
        """A file name that is not one plain, short, visible name is 400."""
        app = upload_app(tmp_path)
        form = form_for(app, "any/")
        r = post(app, form, b"x", filename)
        assert r.status_code == 400
        assert stored(app) == {}
        ok = "x" * (MAX_UPLOAD_NAME - 4) + ".txt"
        assert post(app, form, b"x", ok).status_code == 204

    def test_too_large(self, tmp_path: Path) -> None:
        """Past max_size is 413 and no object nor temporary file is left."""
        app = upload_app(tmp_path)
        form = form_for(app, "any/", max_size=1000)
        assert post(app, form, b"x" * 1001, "a.bin").status_code == 413
        assert post(app, form, b"x" * 300_000, "a.bin").status_code == 413
        assert stored(app) == {}
        assert no_temporary_files(tmp_path / "up")
        assert post(app, form, b"x" * 1000, "a.bin").status_code == 204

    def test_tampered_and_expired(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A changed policy or one past its expiry is 403; a PUT URL's is not a form's."""
        app = upload_app(tmp_path)
        form = form_for(app, "any/", expires=60)
        policy = form.fields["policy"]
        assert (
            post(app, form, b"x", "a.txt", policy=policy.replace(".", "x.", 1)).status_code == 403
        )
        put_token = url_for_put(app, "any/a.txt").partition("policy=")[2]
        assert post(app, form, b"x", "a.txt", policy=put_token).status_code == 403
        monkeypatch.setattr(
            app.extensions["storage_dsn"].uploads, "clock", lambda: time.time() + 61
        )
        assert post(app, form, b"x", "a.txt").status_code == 403
        assert stored(app) == {}

    @pytest.mark.parametrize(
        ("body", "content_type"),
        [
            (b"key=a", "application/x-www-form-urlencoded"),
            (b"--B\r\nnot a part", "multipart/form-data; boundary=B"),
            (
                b'--B\r\nContent-Disposition: form-data; name="key"\r\n\r\nx\r\n--B--\r\n',
                "multipart/form-data; boundary=B",
            ),
            (b"--B\r\n" + b"X: " + b"y" * 300_000, "multipart/form-data; boundary=B"),
            (b"", "multipart/form-data"),
        ],
        ids=["urlencoded", "truncated", "no-file", "endless-header", "no-boundary"],
    )
    def test_malformed(self, tmp_path: Path, body: bytes, content_type: str) -> None:
        """What is no multipart form with a file is 400."""
        app = upload_app(tmp_path)
        r = app.test_client().post("/media/", data=body, content_type=content_type)
        assert r.status_code == 400
        assert_secure(r)

    def test_file_not_named_file(self, tmp_path: Path) -> None:
        """The file must be the field named file, as on S3."""
        app = upload_app(tmp_path)
        form = form_for(app, "any/")
        data = {**form.fields, "upload": (io.BytesIO(b"x"), "a.txt")}
        r = app.test_client().post("/media/", data=data, content_type="multipart/form-data")
        assert r.status_code == 400

    def test_post_elsewhere_is_405(self, tmp_path: Path) -> None:
        """Forms post to the media root only; a POST to a key is 405, as before."""
        app = upload_app(tmp_path)
        form = form_for(app, "any/")
        data = {**form.fields, "file": (io.BytesIO(b"x"), "a.txt")}
        assert app.test_client().post("/media/any/a.txt", data=data).status_code == 405

    def test_memory_storage(self, tmp_path: Path) -> None:
        """A memory storage takes form posts at the blueprint's root."""
        app = upload_app(tmp_path, f"memory://{uuid.uuid4().hex}/?url=%2Fmedia%2F")
        assert post(app, form_for(app, "any/"), b"mem", "a.txt").status_code == 204
        assert app.test_client().get("/media/any/a.txt").data == b"mem"


def test_concurrent_puts_one_key(tmp_path: Path) -> None:
    """Many PUTs of one key at once: the object is one of the bodies, whole."""
    app = upload_app(tmp_path)
    url = url_for_put(app, "race.bin")
    bodies = [bytes([i]) * (256 * 1024 + i) for i in range(8)]
    statuses: list[int] = []

    def put(body: bytes) -> None:
        statuses.append(app.test_client().put(url, data=body).status_code)

    threads = [threading.Thread(target=put, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [204] * 8
    assert stored(app)["race.bin"] in bodies
    assert no_temporary_files(tmp_path / "up")


# -- under a real gunicorn ---------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flask, Path]]:
    """gunicorn (4 workers) taking uploads, and an app with its secret to sign for it."""
    tmp = tmp_path_factory.mktemp("uploads")
    root = tmp / "media"
    dsn = f"file://{root}/?url=%2Fmedia%2F"
    env = {"MEDIA_TEST_DSN": dsn, "MEDIA_TEST_INSTANCE": str(tmp), "MEDIA_TEST_SECRET_KEY": SECRET}
    with gunicorn("tests.gunicorn_app:app", env, workers=4) as base:
        yield base, upload_app(tmp / "signer", dsn), root


def send(
    base: str, method: str, path: str, body: bytes | Iterator[bytes], headers: dict[str, str]
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=30)
    try:
        conn.request(
            method, path, body=body, headers=headers, encode_chunked=not isinstance(body, bytes)
        )
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def multipart(form: UploadForm, body: bytes, filename: str, **fields: str) -> tuple[bytes, str]:
    """The bytes a browser sends for ``form``: its fields, then the file."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in {**form.fields, **fields}.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    name = filename.replace('"', "%22")  # as browsers write it
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    return b"".join([*parts, body, f"\r\n--{boundary}--\r\n".encode()]), boundary


class TestOverTheWire:
    def test_put(self, served: tuple[str, Flask, Path]) -> None:
        """A signed PUT lands whole and is served back."""
        base, signer, root = served
        body = os.urandom(300_000)
        url = url_for_put(signer, "wire/put.bin", max_size=len(body))
        assert send(base, "PUT", url, body, {})[0] == 204
        assert (root / "wire" / "put.bin").read_bytes() == body
        assert send(base, "GET", "/media/wire/put.bin", b"", {})[1] == body

    def test_chunked_put(self, served: tuple[str, Flask, Path]) -> None:
        """A chunked PUT is counted as it streams: within the limit stored, past it 413."""
        base, signer, root = served
        url = url_for_put(signer, "wire/chunked.bin", max_size=200_000)
        assert send(base, "PUT", url, iter([b"a" * 100_000] * 2), {})[0] == 204
        assert send(base, "PUT", url, iter([b"b" * 100_000] * 3), {})[0] == 413
        assert (root / "wire" / "chunked.bin").read_bytes() == b"a" * 200_000

    def test_refusals(
        self, served: tuple[str, Flask, Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Oversize, tampered, expired and wrongly typed PUTs get their status, readable."""
        base, signer, root = served
        url = url_for_put(signer, "wire/no.png", max_size=1000, content_type="image/png")
        png = {"Content-Type": "image/png"}
        assert send(base, "PUT", url, b"x" * 500_000, png)[0] == 413
        assert send(base, "PUT", url + "x", b"x", png)[0] == 403
        assert send(base, "PUT", url, b"x", {"Content-Type": "image/gif"})[0] == 403
        uploads = signer.extensions["storage_dsn"].uploads
        with monkeypatch.context() as patch:  # signed an hour ago, for a minute
            patch.setattr(uploads, "clock", lambda: time.time() - 3600)
            old = url_for_put(signer, "wire/no.png", expires=60)
        status, answer, _ = send(base, "PUT", old, b"x", {})
        assert (status, b"expired" in answer) == (403, True)
        assert not (root / "wire" / "no.png").exists()

    def test_form_post(self, served: tuple[str, Flask, Path]) -> None:
        """A browser-shaped multipart POST lands under the prefix; over the limit is 413."""
        base, signer, root = served
        form = form_for(signer, "wire/forms/", max_size=100_000, content_type="image/")
        body, boundary = multipart(
            form, b"\x89PNG" * 1000, "dot.png", **{"Content-Type": "image/png"}
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        status, _, response = send(base, "POST", form.url, body, headers)
        assert status == 204
        assert response.getheader("Location") == "/media/wire/forms/dot.png"
        assert (root / "wire" / "forms" / "dot.png").read_bytes() == b"\x89PNG" * 1000
        big, boundary = multipart(form, b"x" * 400_000, "big.png", **{"Content-Type": "image/png"})
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        assert send(base, "POST", form.url, big, headers)[0] == 413
        assert not (root / "wire" / "forms" / "big.png").exists()
        evil, boundary = multipart(form, b"x", "../../evil.png", **{"Content-Type": "image/png"})
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        assert send(base, "POST", form.url, evil, headers)[0] == 400

    def test_concurrent_puts_one_key(self, served: tuple[str, Flask, Path]) -> None:
        """PUTs of one key racing over four workers: one body wins, whole."""
        base, signer, root = served
        url = url_for_put(signer, "wire/race.bin")
        bodies = [bytes([i]) * (512 * 1024 + i) for i in range(8)]
        statuses: list[int] = []
        threads = [
            threading.Thread(target=lambda b=b: statuses.append(send(base, "PUT", url, b, {})[0]))
            for b in bodies
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [204] * 8
        assert (root / "wire" / "race.bin").read_bytes() in bodies
        assert no_temporary_files(root)
