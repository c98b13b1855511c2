"""The Flask extension through the test client: config, redirects to remote storages, uploads.

The media server's HTTP behaviour (conditionals, ranges, hostile paths) is in test_serving.py.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string, url_for
from werkzeug.datastructures import FileStorage

from storage_dsn import ConfigurationError
from storage_dsn.flask import Media
from tests.apps import assert_secure, flask_app, make_app
from tests.conftest import KEY_ID, QUOTED_SECRET


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

    def test_platform_guide_alias(self, tmp_path: Path) -> None:
        """STORAGE, as the platform guide's config names it, is read when STORAGE_DSN is not."""
        app = make_app(tmp_path, STORAGE="memory://guide/?url=%2Ffiles%2F")
        assert app.config["STORAGE_DSN"] == "memory://guide/?url=%2Ffiles%2F"
        with app.test_request_context():
            assert url_for("media.serve", key="x.png") == "/files/x.png"

    def test_alias_unset_in_environment(self, tmp_path: Path) -> None:
        """STORAGE = os.environ.get(...) without the variable is None: the usual default."""
        app = make_app(tmp_path, STORAGE=None, TESTING=True)
        assert app.config["STORAGE_DSN"].startswith(f"file://{tmp_path}/instance/media/")

    def test_alias_agreeing(self, tmp_path: Path) -> None:
        """STORAGE and STORAGE_DSN may both be set when they agree."""
        dsn = "memory://both/?url=%2Fmedia%2F"
        app = make_app(tmp_path, STORAGE=dsn, STORAGE_DSN=dsn)
        assert app.extensions["storage_dsn"].storage.config.root.endswith("both")

    def test_alias_conflict(self, tmp_path: Path) -> None:
        """STORAGE and STORAGE_DSN naming different storages is an error naming both
        keys, and neither DSN (they carry secrets)."""
        other = f"s3://{KEY_ID}:{QUOTED_SECRET}@b.s3.amazonaws.com/"
        with pytest.raises(ConfigurationError) as info:
            make_app(tmp_path, STORAGE=other, STORAGE_DSN="memory://mine/")
        message = str(info.value)
        assert "STORAGE_DSN" in message
        assert "STORAGE " in message
        assert QUOTED_SECRET not in message
        assert "memory://" not in message

    def test_fallback_warns_once_in_production(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """No DSN anywhere in a production app: one warning that media will be lost on
        the next deploy and how to set STORAGE_DSN, however often the app is built."""
        caplog.set_level("WARNING", logger="storage_dsn.flask")
        make_app(tmp_path)
        make_app(tmp_path)
        warnings = [r for r in caplog.records if r.name == "storage_dsn.flask"]
        assert len(warnings) == 1
        message = warnings[0].getMessage()
        assert "lost on the next deploy" in message
        assert "STORAGE_DSN" in message
        assert str(tmp_path / "instance" / "media") in message

    @pytest.mark.parametrize("mode", ["DEBUG", "TESTING"])
    def test_fallback_quiet_in_development(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
    ) -> None:
        """Debug and testing apps fall back to the instance folder without a warning."""
        caplog.set_level("WARNING", logger="storage_dsn.flask")
        app = flask_app("dev", tmp_path)
        app.config[mode] = True
        Media(app, environ={})
        assert not [r for r in caplog.records if r.name == "storage_dsn.flask"]

    def test_configured_storage_is_quiet(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A DSN from the environment or the config never warns."""
        caplog.set_level("WARNING", logger="storage_dsn.flask")
        Media(flask_app("env", tmp_path), environ={"DEFAULT_STORAGE_DSN": "memory://quiet/"})
        make_app(tmp_path, STORAGE_DSN="memory://quiet/")
        assert not [r for r in caplog.records if r.name == "storage_dsn.flask"]

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
