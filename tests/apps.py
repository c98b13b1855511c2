"""Flask apps for the tests: a media app on a local storage, and a client that reads whole
responses (as a WSGI server does, which closes each body)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from storage_dsn.flask import Media

__all__ = ["BODY", "SECURITY", "BufferedClient", "app", "assert_secure", "flask_app", "make_app"]

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
