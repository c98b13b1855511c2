"""The Flask extension through the test client: config, serving, conditionals, uploads."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string, url_for
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.http import http_date

from storage_dsn.flask import Media
from tests.conftest import KEY_ID, QUOTED_SECRET

BODY = bytes(range(256)) * 40  # 10,240 bytes


class BufferedClient(FlaskClient):
    """Reads every response whole, which closes its body as a WSGI server would."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def flask_app(name: str, tmp_path: Path) -> Flask:
    app = Flask(name, instance_path=str(tmp_path))
    app.test_client_class = BufferedClient
    return app


def make_app(tmp_path: Path, **config: Any) -> Flask:
    app = flask_app("media_test", tmp_path / "instance")
    app.config.update(config)
    Media(app, environ={})
    return app


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    app = make_app(tmp_path, STORAGE_DSN=f"file://{tmp_path}/media/?url=%2Fmedia%2F")
    storage = app.extensions["storage_dsn"].storage
    storage.write_bytes("photos/cat.bin", BODY)
    storage.write_bytes("a b/ü.txt", b"unicode")
    storage.write_bytes("page.html", b"<script>alert(1)</script>")
    storage.write_bytes("empty.txt", b"")
    return app


SECURITY = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


def assert_secure(response: Any) -> None:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (response.status, name)


class TestConfig:
    def test_defaults(self, tmp_path: Path) -> None:
        """Without config or environment the storage is the instance folder at /media/."""
        app = make_app(tmp_path)
        assert app.config["STORAGE_DSN"] == f"file://{tmp_path}/instance/media/?url=%2Fmedia%2F"
        assert app.config["MEDIA_SERVE"] is None
        assert app.config["MEDIA_MAX_AGE"] == 0
        assert app.config["MEDIA_REDIRECT"] is True
        assert app.config["MEDIA_X_ACCEL"] is None
        with app.test_request_context():
            assert url_for("media.serve", key="a b/ü.jpg") == "/media/a%20b/%C3%BC.jpg"

    def test_environment(self, tmp_path: Path) -> None:
        """DEFAULT_STORAGE_DSN from the environment is the default STORAGE_DSN."""
        app = flask_app("env_test", tmp_path)
        Media(app, environ={"DEFAULT_STORAGE_DSN": "memory://envapp/?url=%2Ffiles%2F"})
        assert app.config["STORAGE_DSN"] == "memory://envapp/?url=%2Ffiles%2F"
        with app.test_request_context():
            assert url_for("media.serve", key="x.png") == "/files/x.png"

    def test_factory_and_several_apps(self, tmp_path: Path) -> None:
        """One Media object serves several apps, each with its own storage."""
        media = Media()
        apps = []
        for name in ("one", "two"):
            app = flask_app(name, tmp_path / name)
            app.config["STORAGE_DSN"] = f"file://{tmp_path}/{name}/?url=%2Fmedia%2F"
            media.init_app(app)
            apps.append(app)
        for app in apps:
            with app.app_context():
                media.storage.write_bytes("who.txt", app.name.encode())
        for app in apps:
            assert app.test_client().get("/media/who.txt").data == app.name.encode()
            with app.app_context():
                assert media.url("who.txt") == "/media/who.txt"

    def test_template_global(self, app: Flask) -> None:
        """media_url() is available in templates."""
        with app.test_request_context():
            html = render_template_string("{{ media_url('a b/ü.txt') }}")
        assert html == "/media/a%20b/%C3%BC.txt"

    def test_needs_init_app(self, tmp_path: Path) -> None:
        """Using Media in an app it was not initialised for says so."""
        media = Media()
        app = Flask("bare", instance_path=str(tmp_path))
        with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
            media.storage  # noqa: B018


class TestServing:
    def test_get(self, app: Flask) -> None:
        """GET returns the bytes with type, length, validators and security headers."""
        r = app.test_client().get("/media/photos/cat.bin")
        assert r.status_code == 200
        assert r.data == BODY
        assert r.headers["Content-Length"] == str(len(BODY))
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["ETag"].startswith('"')
        assert r.headers["Last-Modified"]
        assert r.headers["Cache-Control"] == "no-cache"
        assert r.headers["Accept-Ranges"] == "bytes"
        assert_secure(r)

    def test_head(self, app: Flask) -> None:
        """HEAD has GET's headers and no body."""
        client = app.test_client()
        get, head = client.get("/media/photos/cat.bin"), client.head("/media/photos/cat.bin")
        assert head.status_code == 200
        assert head.data == b""
        for name in ("ETag", "Last-Modified", "Content-Length", "Content-Type"):
            assert head.headers[name] == get.headers[name]

    def test_unicode_key(self, app: Flask) -> None:
        """Percent-encoded UTF-8 keys are served."""
        r = app.test_client().get("/media/a%20b/%C3%BC.txt")
        assert r.data == b"unicode"
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"

    def test_html_is_sandboxed(self, app: Flask) -> None:
        """An uploaded HTML page is served sandboxed and unsniffable."""
        r = app.test_client().get("/media/page.html")
        assert r.headers["Content-Type"].startswith("text/html")
        assert_secure(r)

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    def test_other_methods(self, app: Flask, method: str) -> None:
        """Anything but GET and HEAD is 405 with Allow."""
        r = app.test_client().open("/media/photos/cat.bin", method=method)
        assert r.status_code == 405
        assert r.headers["Allow"] == "GET, HEAD"
        assert_secure(r)

    def test_max_age(self, tmp_path: Path) -> None:
        """MEDIA_MAX_AGE sets a public max-age."""
        app = make_app(
            tmp_path, STORAGE_DSN=f"file://{tmp_path}/m/?url=%2Fmedia%2F", MEDIA_MAX_AGE=86400
        )
        app.extensions["storage_dsn"].storage.write_bytes("a.txt", b"x")
        r = app.test_client().get("/media/a.txt")
        assert r.headers["Cache-Control"] == "public, max-age=86400"

    def test_x_accel(self, tmp_path: Path) -> None:
        """MEDIA_X_ACCEL answers with X-Accel-Redirect and no body."""
        app = make_app(
            tmp_path,
            STORAGE_DSN=f"file://{tmp_path}/m/?url=%2Fmedia%2F",
            MEDIA_X_ACCEL="/protected-media/",
        )
        app.extensions["storage_dsn"].storage.write_bytes("a b.txt", b"x")
        r = app.test_client().get("/media/a%20b.txt")
        assert r.status_code == 200
        assert r.headers["X-Accel-Redirect"] == "/protected-media/a%20b.txt"
        assert r.data == b""
        assert_secure(r)
        assert app.test_client().get("/media/missing.txt").status_code == 404

    def test_memory_storage_served_by_view(self, tmp_path: Path) -> None:
        """A memory storage with a path URL is served through the blueprint view."""
        app = make_app(tmp_path, STORAGE_DSN="memory://flaskmem/?url=%2Fmedia%2F")
        app.extensions["storage_dsn"].storage.write_bytes("m.txt", b"from memory")
        client = app.test_client()
        r = client.get("/media/m.txt")
        assert r.data == b"from memory"
        assert (
            client.get("/media/m.txt", headers={"If-None-Match": r.headers["ETag"]}).status_code
            == 304
        )
        assert client.get("/media/m.txt", headers={"Range": "bytes=5-"}).data == b"memory"
        assert client.get("/media/nope.txt").status_code == 404


class TestConditional:
    def etag(self, app: Flask) -> str:
        return str(app.test_client().get("/media/photos/cat.bin").headers["ETag"])

    @pytest.mark.parametrize("form", ["{e}", "W/{e}", '"other", {e}', "*"])
    def test_if_none_match(self, app: Flask, form: str) -> None:
        """A matching If-None-Match (weak comparison, lists, *) gives 304 with validators."""
        etag = self.etag(app)
        r = app.test_client().get(
            "/media/photos/cat.bin", headers={"If-None-Match": form.format(e=etag)}
        )
        assert r.status_code == 304
        assert r.data == b""
        assert r.headers["ETag"] == etag
        assert_secure(r)

    def test_if_none_match_other(self, app: Flask) -> None:
        """A different ETag gives the full 200."""
        r = app.test_client().get("/media/photos/cat.bin", headers={"If-None-Match": '"nope"'})
        assert r.status_code == 200

    def test_if_modified_since(self, app: Flask) -> None:
        """If-Modified-Since at or after the mtime gives 304; before gives 200."""
        client = app.test_client()
        last = client.get("/media/photos/cat.bin").headers["Last-Modified"]
        assert (
            client.get("/media/photos/cat.bin", headers={"If-Modified-Since": last}).status_code
            == 304
        )
        old = http_date(time.time() - 86400 * 365)
        assert (
            client.get("/media/photos/cat.bin", headers={"If-Modified-Since": old}).status_code
            == 200
        )

    def test_if_none_match_wins_over_date(self, app: Flask) -> None:
        """If-None-Match is decided first; If-Modified-Since is then ignored."""
        client = app.test_client()
        last = client.get("/media/photos/cat.bin").headers["Last-Modified"]
        headers = {"If-None-Match": '"nope"', "If-Modified-Since": last}
        assert client.get("/media/photos/cat.bin", headers=headers).status_code == 200

    def test_if_match(self, app: Flask) -> None:
        """If-Match needs a strong match, else 412."""
        client = app.test_client()
        etag = self.etag(app)
        assert client.get("/media/photos/cat.bin", headers={"If-Match": etag}).status_code == 200
        assert client.get("/media/photos/cat.bin", headers={"If-Match": "*"}).status_code == 200
        for bad in ('"nope"', f"W/{etag}"):
            r = client.get("/media/photos/cat.bin", headers={"If-Match": bad})
            assert r.status_code == 412
            assert_secure(r)

    def test_if_unmodified_since(self, app: Flask) -> None:
        """If-Unmodified-Since before the mtime gives 412."""
        old = http_date(time.time() - 86400 * 365)
        r = app.test_client().get("/media/photos/cat.bin", headers={"If-Unmodified-Since": old})
        assert r.status_code == 412


class TestRanges:
    @pytest.mark.parametrize(
        ("header", "start", "stop"),
        [
            ("bytes=0-0", 0, 1),
            ("bytes=0-99", 0, 100),
            ("bytes=100-", 100, len(BODY)),
            ("bytes=-1", len(BODY) - 1, len(BODY)),
            ("bytes=-100", len(BODY) - 100, len(BODY)),
            ("bytes=-999999", 0, len(BODY)),
            ("bytes=10000-999999", 10000, len(BODY)),
        ],
    )
    def test_single_range(self, app: Flask, header: str, start: int, stop: int) -> None:
        """A single satisfiable range gives 206 with exactly those bytes."""
        r = app.test_client().get("/media/photos/cat.bin", headers={"Range": header})
        assert r.status_code == 206
        assert r.data == BODY[start:stop]
        assert r.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{len(BODY)}"
        assert r.headers["Content-Length"] == str(stop - start)
        assert_secure(r)

    @pytest.mark.parametrize("header", ["bytes=20000-", "bytes=10240-10300"])
    def test_unsatisfiable(self, app: Flask, header: str) -> None:
        """A range past the end is 416 with Content-Range: bytes */LEN."""
        r = app.test_client().get("/media/photos/cat.bin", headers={"Range": header})
        assert r.status_code == 416
        assert r.headers["Content-Range"] == f"bytes */{len(BODY)}"
        assert_secure(r)

    def test_empty_file(self, app: Flask) -> None:
        """No range of an empty file is satisfiable."""
        r = app.test_client().get("/media/empty.txt", headers={"Range": "bytes=0-0"})
        assert r.status_code == 416
        assert r.headers["Content-Range"] == "bytes */0"

    @pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=abc", "pages=1-2", "bytes=5-1"])
    def test_multi_or_malformed_gives_whole(self, app: Flask, header: str) -> None:
        """Multi-range and malformed headers get the whole file, 200."""
        r = app.test_client().get("/media/photos/cat.bin", headers={"Range": header})
        assert r.status_code == 200
        assert r.data == BODY

    def test_if_range(self, app: Flask) -> None:
        """If-Range: the range when the validator matches, the whole file when not."""
        client = app.test_client()
        first = client.get("/media/photos/cat.bin")
        etag, last = first.headers["ETag"], first.headers["Last-Modified"]
        for validator in (etag, last):
            r = client.get(
                "/media/photos/cat.bin", headers={"Range": "bytes=0-9", "If-Range": validator}
            )
            assert r.status_code == 206
        for stale in ('"old"', http_date(0), f"W/{etag}"):
            r = client.get(
                "/media/photos/cat.bin", headers={"Range": "bytes=0-9", "If-Range": stale}
            )
            assert r.status_code == 200
            assert r.data == BODY

    def test_head_ignores_range(self, app: Flask) -> None:
        """HEAD with Range reports the whole representation."""
        r = app.test_client().head("/media/photos/cat.bin", headers={"Range": "bytes=0-9"})
        assert r.status_code == 200
        assert r.headers["Content-Length"] == str(len(BODY))


HOSTILE_PATHS = [
    "/media/../secret.txt",
    "/media/%2e%2e/secret.txt",
    "/media/%2E%2E%2Fsecret.txt",
    "/media/..%2fsecret.txt",
    "/media/%252e%252e/secret.txt",
    "/media/%c0%ae%c0%ae/secret.txt",
    "/media//etc/passwd",
    "/media/%2fetc%2fpasswd",
    "/media/C:%5c..%5csecret.txt",
    "/media/c:/secret.txt",
    "/media/..%5csecret.txt",
    "/media/a%00b",
    "/media/.env",
    "/media/.hidden/x.txt",
    "/media/photos",
    "/media/photos/",
    "/media/",
    "/media/" + "a" * 1100,
    "/media/" + "a/" * 600 + "x",
    "/media/link/secret.txt",
    "/media/inside-link.txt",
]


class TestHostilePaths:
    @pytest.fixture
    def hostile_app(self, app: Flask, tmp_path: Path) -> Flask:
        (tmp_path / "secret.txt").write_bytes(b"TOP SECRET")
        root = tmp_path / "media"
        (root / ".env").write_bytes(b"TOP SECRET")
        (root / ".hidden").mkdir()
        (root / ".hidden" / "x.txt").write_bytes(b"TOP SECRET")
        (root / "link").symlink_to(tmp_path)
        (root / "inside-link.txt").symlink_to(tmp_path / "secret.txt")
        return app

    @pytest.mark.parametrize("path", HOSTILE_PATHS, ids=lambda p: p[:40])
    def test_404(self, hostile_app: Flask, path: str) -> None:
        """Every attack is a 404 (or a redirect to its own normal form), never the file."""
        r = hostile_app.test_client().get(path)
        assert b"TOP SECRET" not in r.data
        assert r.status_code in (404, 308)
        assert_secure(r) if r.status_code == 404 else None


class TestRemote:
    def test_redirect_public(self, storage_factory: Any, tmp_path: Path) -> None:
        """A remote storage answers 302 to the public URL, with the same key rules."""
        storage = storage_factory("s3-server", "acl=public-read")
        app = make_app(tmp_path, STORAGE_DSN=storage.config.to_dsn())
        r = app.test_client().get("/media/a%20b/%C3%BC.jpg")
        assert r.status_code == 302
        assert r.headers["Location"] == storage.url("a b/ü.jpg")
        assert r.headers["Cache-Control"] == "no-cache"
        assert_secure(r)
        assert app.test_client().get("/media/..%2fx").status_code == 404
        assert app.test_client().get("/media/.env").status_code == 404

    def test_redirect_presigned(self, tmp_path: Path) -> None:
        """Presigned redirects are not cached."""
        dsn = f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-west-1.amazonaws.com/?qs_auth=true"
        app = make_app(tmp_path, STORAGE_DSN=dsn)
        r = app.test_client().get("/media/a.jpg")
        assert r.status_code == 302
        assert "X-Amz-Signature=" in r.headers["Location"]
        assert r.headers["Cache-Control"] == "no-store"

    def test_no_redirect(self, tmp_path: Path) -> None:
        """MEDIA_REDIRECT=False makes remote keys 404."""
        dsn = f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-west-1.amazonaws.com/"
        app = make_app(tmp_path, STORAGE_DSN=dsn, MEDIA_REDIRECT=False)
        assert app.test_client().get("/media/a.jpg").status_code == 404

    def test_local_not_served_no_loop(self, tmp_path: Path) -> None:
        """MEDIA_SERVE=False on a local /media/ storage is 404, not a redirect to itself."""
        app = make_app(
            tmp_path, STORAGE_DSN=f"file://{tmp_path}/m/?url=%2Fmedia%2F", MEDIA_SERVE=False
        )
        app.extensions["storage_dsn"].storage.write_bytes("a.txt", b"x")
        assert app.test_client().get("/media/a.txt").status_code == 404

    def test_local_with_cdn_redirects(self, tmp_path: Path) -> None:
        """A local storage whose public URL is a CDN redirects there."""
        dsn = f"file://{tmp_path}/m/?url=https%3A%2F%2Fcdn.example.org%2Fm%2F"
        app = make_app(tmp_path, STORAGE_DSN=dsn)
        r = app.test_client().get("/media/a.txt")
        assert r.status_code == 302
        assert r.headers["Location"] == "https://cdn.example.org/m/a.txt"


class TestUploads:
    def upload_app(self, tmp_path: Path, **config: Any) -> Flask:
        app = make_app(tmp_path, STORAGE_DSN=f"file://{tmp_path}/up/?url=%2Fmedia%2F", **config)
        media: Media = Media.__new__(Media)  # the app's own Media; any instance works

        @app.post("/upload")
        def upload() -> str:
            from flask import request

            return media.save(request.files["file"], prefix="uploads/")

        return app

    def test_safe_key_from_filename(self, tmp_path: Path) -> None:
        """The key comes from a sanitised file name; the client's path is ignored."""
        app = self.upload_app(tmp_path)
        client = app.test_client()
        for name, expected in [
            ("cat.jpg", "uploads/cat.jpg"),
            ("../../etc/passwd", "uploads/etc_passwd"),
            ("C:\\Users\\me\\dog.png", "uploads/CUsersmedog.png"),
            (".htaccess", "uploads/htaccess"),
        ]:
            data = {"file": (io.BytesIO(b"img"), name)}
            r = client.post("/upload", data=data, content_type="multipart/form-data")
            assert r.status_code == 200
            assert r.get_data(as_text=True) == expected

    def test_no_overwrite(self, tmp_path: Path) -> None:
        """A second upload of the same name gets a new key; the first file stays."""
        app = self.upload_app(tmp_path)
        client = app.test_client()
        keys = []
        for body in (b"first", b"second"):
            data = {"file": (io.BytesIO(body), "same.txt")}
            keys.append(client.post("/upload", data=data).get_data(as_text=True))
        assert keys[0] == "uploads/same.txt"
        assert keys[1] != keys[0]
        assert keys[1].startswith("uploads/same-")
        assert keys[1].endswith(".txt")
        assert client.get("/media/uploads/same.txt").data == b"first"
        assert client.get("/media/" + keys[1]).data == b"second"

    def test_racing_uploads_both_land(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An upload that loses the race for a name after the check gets another key."""
        app = make_app(tmp_path, STORAGE_DSN=f"file://{tmp_path}/up/?url=%2Fmedia%2F")
        media = Media.__new__(Media)
        with app.test_request_context():
            first = media.save(FileStorage(io.BytesIO(b"first"), "same.txt"))
            # The second upload checked before the first was written: it sees no file.
            monkeypatch.setattr(type(media.storage), "exists", lambda self, key: False)
            second = media.save(FileStorage(io.BytesIO(b"second"), "same.txt"))
            assert first == "same.txt"
            assert second.startswith("same-")
            assert second.endswith(".txt")
            assert media.storage.read_bytes(first) == b"first"
            assert media.storage.read_bytes(second) == b"second"

    def test_overwrite_and_explicit_key(self, tmp_path: Path) -> None:
        """overwrite=True replaces; an explicit key is used as given."""
        app = make_app(tmp_path, STORAGE_DSN=f"file://{tmp_path}/up/?url=%2Fmedia%2F")
        media = Media.__new__(Media)
        with app.test_request_context():
            first = media.save(FileStorage(io.BytesIO(b"1"), "x.txt"), key="fixed/x.txt")
            second = media.save(
                FileStorage(io.BytesIO(b"2"), "x.txt"), key="fixed/x.txt", overwrite=True
            )
            assert first == second == "fixed/x.txt"
            assert media.storage.read_bytes("fixed/x.txt") == b"2"
            nameless = media.save(FileStorage(io.BytesIO(b"3"), "", content_type="image/png"))
            assert nameless == "upload.png"

    def test_size_limit(self, tmp_path: Path) -> None:
        """MAX_CONTENT_LENGTH refuses larger uploads with 413 and stores nothing."""
        app = self.upload_app(tmp_path, MAX_CONTENT_LENGTH=1000)
        data = {"file": (io.BytesIO(b"x" * 5000), "big.bin")}
        r = app.test_client().post("/upload", data=data, content_type="multipart/form-data")
        assert r.status_code == 413
        assert not os.path.exists(tmp_path / "up" / "uploads" / "big.bin")
