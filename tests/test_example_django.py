"""The Django example project (examples/django): migrations, collectstatic and an upload
through the page under gunicorn, on the embedded default storage and on SeaweedFS.

Each step runs in processes of its own, as a user runs them: Django's settings are
per process, and this one's belong to tests/djangoapp.
"""

from __future__ import annotations

import http.client
import http.cookies
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import KEY_ID, QUOTED_SECRET
from tests.servers import ROOT
from tests.servers.gunicorn import gunicorn

EXAMPLE = ROOT / "examples" / "django"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEFAULT_STORAGE_DSN", "STATIC_STORAGE_DSN", "DJANGO_SETTINGS_MODULE")
    }
    pythonpath = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return {**env, "EXAMPLE_DATA_DIR": str(data), "PYTHONPATH": pythonpath, **extra}


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _request(
    base: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    where = urlsplit(base if path.startswith("/") else path)
    conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
    target = (
        path if path.startswith("/") else where.path + (f"?{where.query}" if where.query else "")
    )
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


def _upload_and_show(base: str) -> tuple[str, str]:
    """Upload PNG through the page; return the image's and the stylesheet's URLs."""
    status, headers, page = _request(base, "GET", "/")
    assert status == 200, page[:500]
    cookie = http.cookies.SimpleCookie(headers["Set-Cookie"])["csrftoken"].value
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    content_type, body = _multipart(
        {"csrfmiddlewaretoken": token.group(1).decode(), "title": "Red"}, "red dot.png", PNG
    )
    status, headers, _ = _request(
        base,
        "POST",
        "/",
        body,
        {"Content-Type": content_type, "Cookie": f"csrftoken={cookie}", "Origin": base},
    )
    assert status == 302
    _, _, page = _request(base, "GET", "/")
    image = re.search(rb'<img src="([^"]+)" alt="Red">', page)
    stylesheet = re.search(rb'<link rel="stylesheet" href="([^"]+)">', page)
    assert image is not None
    assert stylesheet is not None
    return image.group(1).decode(), stylesheet.group(1).decode()


def test_runs_on_the_embedded_default(tmp_path: Path) -> None:
    """No DSN set: media and static files under data/, served by the app itself, with
    hashed static names; migrations need no DSN either."""
    env = _env(tmp_path / "data")
    assert "No changes detected" in _manage(env, "makemigrations", "--check", "--dry-run")
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    assert (tmp_path / "data" / "static" / "staticfiles.json").is_file()
    with gunicorn("mysite.wsgi:application", env, cwd=EXAMPLE) as base:
        image, stylesheet = _upload_and_show(base)
        assert re.fullmatch(r"/media/photos/red_dot\.png", image)
        assert re.fullmatch(r"/static/gallery/site\.[0-9a-f]{12}\.css", stylesheet)
        status, headers, body = _request(base, "GET", image)
        assert (status, body) == (200, PNG)
        assert headers["Content-Security-Policy"] == "sandbox"
        status, headers, body = _request(base, "GET", stylesheet)
        assert status == 200
        assert b"font-family" in body
        assert headers["Cache-Control"] == "public, max-age=31536000"
    assert (tmp_path / "data" / "media" / "photos" / "red_dot.png").read_bytes() == PNG


@pytest.mark.usefixtures("seaweedfs")
def test_runs_on_seaweedfs(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The same code on an S3 server: media and static files in the bucket, the page
    links to them there, and /media/ links redirect to it."""
    server = request.getfixturevalue("seaweedfs")
    where = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{server.host}/{server.new_prefix()}"
    env = _env(
        tmp_path / "data",
        DEFAULT_STORAGE_DSN=f"{where}/media/",
        STATIC_STORAGE_DSN=f"{where}/static/",
    )
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    with gunicorn("mysite.wsgi:application", env, cwd=EXAMPLE) as base:
        image, stylesheet = _upload_and_show(base)
        assert image.startswith(server.endpoint)
        assert stylesheet.startswith(server.endpoint)
        status, _, body = _request(base, "GET", image)
        assert (status, body) == (200, PNG)
        status, _, body = _request(base, "GET", stylesheet)
        assert status == 200
        assert b"font-family" in body
        status, headers, _ = _request(base, "GET", "/media/photos/red_dot.png")
        assert status == 302
        assert headers["Location"] == image
    assert not (tmp_path / "data" / "media").exists()
