"""media_urlpatterns(): the hardened media server and local direct uploads in Django,
through Django's test client and under a real gunicorn; redirects for remote storages."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.djangoapp import MEDIA_ENV, configure

configure()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from storage_dsn import StorageDSNError  # noqa: E402
from storage_dsn.django import DSNStorage, media_urlpatterns  # noqa: E402
from tests.conftest import KINDS  # noqa: E402
from tests.servers.gunicorn import gunicorn, raw_get  # noqa: E402

BODY = bytes(range(256)) * 40  # 10,240 bytes
SECURITY = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


def _assert_secure(response: Any) -> None:
    for name, value in SECURITY.items():
        assert response[name] == value


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DSNStorage]:
    """A file storage at /media/ holding a few files (and a secret outside its root),
    with media_urlpatterns() as the whole URLconf."""
    root = tmp_path / "media"
    monkeypatch.setenv(MEDIA_ENV, f"file://{root}/?url=%2Fmedia%2F")
    storage = DSNStorage(env=MEDIA_ENV)
    storage.storage.write_bytes("photos/cat.bin", BODY)
    storage.storage.write_bytes("page.html", b"<script>alert(1)</script>")
    (tmp_path / "secret.txt").write_bytes(b"outside")
    (root / ".env").write_bytes(b"SECRET=1")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with _urlconf(media_urlpatterns(storage)):
        yield storage


class _URLConf:
    """A URLconf module: ``urlpatterns`` (hashable, as Django caches resolvers by it)."""

    def __init__(self, patterns: list[Any]) -> None:
        self.urlpatterns = patterns


class _urlconf:
    """``ROOT_URLCONF`` set to a module holding ``patterns``."""

    def __init__(self, patterns: list[Any]) -> None:
        self.override = override_settings(ROOT_URLCONF=_URLConf(patterns))

    def __enter__(self) -> None:
        self.override.enable()

    def __exit__(self, *exc: object) -> None:
        self.override.disable()


class _Client(Client):
    """Reads every response whole and closes it, as a WSGI server does."""

    def request(self, **request: Any) -> Any:
        response = super().request(**request)
        if response.streaming:
            response.body = b"".join(response.streaming_content)
        else:
            response.body = response.content
        response.close()
        return response


def _client() -> Client:
    return _Client(raise_request_exception=True)


class TestLocalServing:
    """A local storage served at its public path, as the Flask blueprint serves it."""

    @pytest.mark.parametrize("debug", [False, True])
    def test_serves_whatever_debug_says(self, local: DSNStorage, debug: bool) -> None:
        """GET gives the file with a strong ETag, nosniff and a sandbox CSP."""
        with override_settings(DEBUG=debug):
            response = _client().get("/media/photos/cat.bin")
        assert response.status_code == 200
        assert response.body == BODY
        assert response["Content-Length"] == str(len(BODY))
        assert response["ETag"].startswith('"')
        assert response["Accept-Ranges"] == "bytes"
        _assert_secure(response)

    def test_conditional_get(self, local: DSNStorage) -> None:
        """If-None-Match with the ETag is a 304 without a body or a content type."""
        etag = _client().get("/media/photos/cat.bin")["ETag"]
        response = _client().get("/media/photos/cat.bin", headers={"If-None-Match": etag})
        assert response.status_code == 304
        assert response.body == b""
        assert "Content-Type" not in response

    def test_range(self, local: DSNStorage) -> None:
        """A single Range is a 206; past the end, a 416 with the length."""
        response = _client().get("/media/photos/cat.bin", headers={"Range": "bytes=10-19"})
        assert response.status_code == 206
        assert response.body == BODY[10:20]
        assert response["Content-Range"] == f"bytes 10-19/{len(BODY)}"
        response = _client().get("/media/photos/cat.bin", headers={"Range": "bytes=99999-"})
        assert response.status_code == 416
        assert response["Content-Range"] == f"bytes */{len(BODY)}"

    def test_head(self, local: DSNStorage) -> None:
        response = _client().head("/media/photos/cat.bin")
        assert response.status_code == 200
        assert response["Content-Length"] == str(len(BODY))
        assert response.body == b""

    def test_html_is_sandboxed(self, local: DSNStorage) -> None:
        """An uploaded page cannot run script in the site's origin."""
        response = _client().get("/media/page.html")
        assert response["Content-Type"] == "text/html; charset=utf-8"
        _assert_secure(response)

    @pytest.mark.parametrize(
        "path",
        [
            "/media/../secret.txt",
            "/media/%2e%2e/secret.txt",
            "/media/photos/%2e%2e/%2e%2e/secret.txt",
            "/media/.env",
            "/media/photos/",
            "/media/photos",
            "/media/link.txt",
            "/media/a%00b",
            "/media/a%5Cb",
            "/media/" + "a" * 300,
            "/media/missing.txt",
            "/media/",
        ],
    )
    def test_not_found(self, local: DSNStorage, path: str) -> None:
        """Traversal, dot-files, directories, NUL, backslashes, long names, symlinks out
        of the root and missing files are 404, never a file outside the root."""
        response = _client().get(path)
        assert response.status_code == 404
        _assert_secure(response)
        assert b"outside" not in response.body

    def test_other_methods(self, local: DSNStorage) -> None:
        """DELETE, and a PUT or POST without a signed policy, are 405."""
        client = _client()
        assert client.delete("/media/photos/cat.bin").status_code == 405
        assert client.put("/media/photos/cat.bin", data=b"x").status_code == 405
        assert client.post("/media/photos/cat.bin", data={}).status_code == 405

    def test_app_urls_still_resolve(self, local: DSNStorage) -> None:
        """The patterns take their prefix only."""
        patterns = media_urlpatterns(local)
        assert len(patterns) == 1
        assert patterns[0].resolve("hello") is None
        assert patterns[0].resolve("media/a.txt") is not None


def _asgi_scope(path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The scope an ASGI server gives Django for a GET of ``path``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def _asgi_get(
    path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], list[bytes]]:
    """GET ``path`` through Django's ASGI handler as an ASGI server drives it: the status,
    the headers and each body message as it was sent."""
    import asyncio

    from asgiref.testing import ApplicationCommunicator
    from django.core.handlers.asgi import ASGIHandler

    scope = _asgi_scope(path, headers)

    async def run() -> tuple[int, dict[str, str], list[bytes]]:
        app = ApplicationCommunicator(ASGIHandler(), scope)
        await app.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await app.receive_output(10)
        parts: list[bytes] = []
        while True:
            message = await app.receive_output(10)
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await app.wait(10)
        found = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return start["status"], found, parts

    return asyncio.run(run())


class TestUnderASGI:
    """Under an ASGI server the body streams too: Django would read a body it can only
    iterate synchronously whole into memory first (and warns; warnings fail tests here)."""

    def test_a_large_file_streams_in_chunks(self, local: DSNStorage) -> None:
        big = bytes(range(256)) * 4096  # 1 MiB: sixteen of the server's 64 KiB chunks
        local.storage.write_bytes("video.bin", big)
        status, headers, parts = _asgi_get("/media/video.bin")
        assert status == 200
        assert b"".join(parts) == big
        assert len([p for p in parts if p]) >= 16  # sent as read, not gathered first
        assert headers["x-content-type-options"] == "nosniff"

    def test_range(self, local: DSNStorage) -> None:
        status, headers, parts = _asgi_get("/media/photos/cat.bin", {"Range": "bytes=10-19"})
        assert status == 206
        assert b"".join(parts) == BODY[10:20]
        assert headers["content-range"] == f"bytes 10-19/{len(BODY)}"

    def test_not_found(self, local: DSNStorage) -> None:
        status, _, _ = _asgi_get("/media/../secret.txt")
        assert status == 404

    def test_a_client_that_goes_away_closes_the_file(
        self, local: DSNStorage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A disconnect mid-body cancels the response; the file is closed all the same."""
        import asyncio
        import threading

        from asgiref.testing import ApplicationCommunicator
        from django.core.handlers.asgi import ASGIHandler

        from storage_dsn.serving import MediaServer

        local.storage.write_bytes("video.bin", bytes(range(256)) * 4096)
        closed, gate = threading.Event(), threading.Event()
        respond = MediaServer.respond

        class Tracked:
            """The server's body; its second chunk waits until the client has gone."""

            def __init__(self, body: Any) -> None:
                self.body, self.chunks, self.read = body, iter(body), 0

            def __iter__(self) -> Tracked:
                return self

            def __next__(self) -> bytes:
                self.read += 1
                if self.read == 2:
                    gate.wait(10)
                return bytes(next(self.chunks))

            def close(self) -> None:
                self.body.close()
                closed.set()

        def tracked(server: MediaServer, *args: Any) -> Any:
            body = respond(server, *args)
            return body if isinstance(body, list) else Tracked(body)

        monkeypatch.setattr(MediaServer, "respond", tracked)
        scope = _asgi_scope("/media/video.bin")

        async def run() -> list[dict[str, Any]]:
            app = ApplicationCommunicator(ASGIHandler(), scope)
            await app.send_input({"type": "http.request", "body": b"", "more_body": False})
            sent = [await app.receive_output(10), await app.receive_output(10)]
            await app.send_input({"type": "http.disconnect"})
            await app.wait(10)
            gate.set()
            return sent

        try:
            start, first = asyncio.run(run())
        finally:
            gate.set()
        assert start["status"] == 200
        assert first["more_body"]  # the body had only begun
        assert closed.wait(10)


class TestWhenNotServed:
    def test_public_url_on_another_host(self, tmp_path: Path) -> None:
        """A local storage whose files another host serves gets no patterns."""
        storage = DSNStorage(dsn=f"file://{tmp_path}/m/?url=https%3A%2F%2Fcdn.example.com%2Fm%2F")
        assert media_urlpatterns(storage) == []

    def test_no_public_url(self, tmp_path: Path) -> None:
        assert media_urlpatterns(DSNStorage(dsn=f"file://{tmp_path}/m/")) == []

    def test_no_dsn(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without the environment variable (makemigrations in CI) there is nothing to
        serve, and importing the URLconf does not fail."""
        monkeypatch.delenv("NOT_SET_DSN", raising=False)
        assert media_urlpatterns(DSNStorage(env="NOT_SET_DSN")) == []

    def test_from_storages_alias(self, local: DSNStorage, monkeypatch: pytest.MonkeyPatch) -> None:
        """The default is STORAGES["default"]; anything but a DSNStorage is refused."""
        from django.core.files.storage import storages

        storages._storages.clear()
        assert len(media_urlpatterns()) == 1
        with pytest.raises(TypeError, match="DSNStorage"):
            media_urlpatterns(SimpleNamespace())  # type: ignore[arg-type]


class TestRemote:
    """A remote storage: MEDIA_URL + name redirects to the name's URL."""

    @pytest.fixture
    def remote(self, request: pytest.FixtureRequest, tmp_path: Path) -> DSNStorage:
        return DSNStorage(dsn=KINDS["s3-server"](request, tmp_path))

    def test_redirects(self, remote: DSNStorage) -> None:
        with _urlconf(media_urlpatterns(remote)):
            response = _client().get("/media/a%20b/c.txt")
        assert response.status_code == 302
        assert response["Location"] == remote.url("a b/c.txt")
        assert response["Cache-Control"] == "no-cache"
        _assert_secure(response)

    def test_signed_redirect_is_not_stored(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        """A presigned URL expires: its redirect says no-store."""
        remote = DSNStorage(dsn=KINDS["s3-server"](request, tmp_path) + "?qs_auth=true")
        with _urlconf(media_urlpatterns(remote)):
            response = _client().get("/media/a.txt")
        assert response.status_code == 302
        assert "X-Amz-Signature=" in response["Location"]
        assert response["Cache-Control"] == "no-store"

    @override_settings(MEDIA_URL="/uploads/")
    def test_media_url_is_the_prefix(self, remote: DSNStorage) -> None:
        with _urlconf(media_urlpatterns(remote)):
            assert _client().get("/uploads/a.txt").status_code == 302
            assert _client().get("/media/a.txt").status_code == 404

    def test_traversal_is_not_redirected(self, remote: DSNStorage) -> None:
        with _urlconf(media_urlpatterns(remote)):
            assert _client().get("/media/../etc/passwd").status_code == 404

    def test_upload_urls_are_the_storages(self, remote: DSNStorage) -> None:
        """Remote storages sign their own uploads; a PUT cannot bound its size."""
        url = remote.upload_url("up/a.txt", content_type="text/plain")
        assert url.startswith(remote.storage.url("up/a.txt").split("?")[0])
        assert "X-Amz-Signature=" in url
        with pytest.raises(StorageDSNError, match="upload_form"):
            remote.upload_url("up/a.txt", max_size=10)
        form = remote.upload_form("avatars/", max_size=1000, content_type="image/")
        assert "policy" in form.fields


class TestLocalUploads:
    """Direct uploads to a local storage, signed with SECRET_KEY, as S3 takes them."""

    def test_put(self, local: DSNStorage) -> None:
        url = local.upload_url("up/a.txt", content_type="text/plain", max_size=100)
        assert url.startswith("/media/up/a.txt?policy=")
        response = _client().put(url, data=b"hello", content_type="text/plain")
        assert response.status_code == 204
        assert local.storage.read_bytes("up/a.txt") == b"hello"

    def test_put_refusals(self, local: DSNStorage) -> None:
        """Tampered, too large, wrong type, or signed with another key: refused."""
        url = local.upload_url("up/a.txt", content_type="text/plain", max_size=4)
        client = _client()
        assert client.put(url + "x", data=b"hi", content_type="text/plain").status_code == 403
        assert client.put(url, data=b"hello", content_type="text/plain").status_code == 413
        assert client.put(url, data=b"hi", content_type="image/png").status_code == 403
        with override_settings(SECRET_KEY="another-secret-key-0123456789-abcdefghij"):
            assert client.put(url, data=b"hi", content_type="text/plain").status_code == 403
        assert not local.exists("up/a.txt")

    def test_key_rotation(self, local: DSNStorage) -> None:
        """A URL signed with the old key still works once it is a fallback."""
        from django.conf import settings

        url = local.upload_url("up/r.txt")
        with override_settings(
            SECRET_KEY="new-secret-key-0123456789-abcdefghijklmnop",
            SECRET_KEY_FALLBACKS=[settings.SECRET_KEY],
        ):
            assert _client().put(url, data=b"r", content_type="").status_code == 204

    def test_post_form(self, local: DSNStorage) -> None:
        """A multipart POST of the signed form stores the file under the prefix."""
        form = local.upload_form("avatars/", max_size=1000, content_type="image/")
        assert form.url == "/media/"
        data = {
            **form.fields,
            "Content-Type": "image/png",
            "file": SimpleUploadedFile("cat.png", b"\x89PNG", "image/png"),
        }
        response = _client().post(form.url, data=data)
        assert response.status_code == 204
        assert response["Location"] == "/media/avatars/cat.png"
        assert local.storage.read_bytes("avatars/cat.png") == b"\x89PNG"
        assert _client().get(response["Location"]).status_code == 200

    def test_post_too_large(self, local: DSNStorage) -> None:
        form = local.upload_form("avatars/", max_size=10, content_type="image/")
        data = {
            **form.fields,
            "Content-Type": "image/png",
            "file": SimpleUploadedFile("big.png", b"x" * 100, "image/png"),
        }
        assert _client().post(form.url, data=data).status_code == 413
        assert not local.exists("avatars/big.png")

    def test_needs_a_path_on_this_site(self, tmp_path: Path) -> None:
        storage = DSNStorage(dsn=f"file://{tmp_path}/m/?url=https%3A%2F%2Fcdn.example.com%2F")
        with pytest.raises(StorageDSNError, match="path on this site"):
            storage.upload_url("a.txt")


class TestUnderGunicorn:
    """The test project under a real gunicorn: sendfile-free streaming, raw requests
    that no client normalises, and an upload."""

    @pytest.fixture
    def server(self, tmp_path: Path) -> Iterator[tuple[str, DSNStorage]]:
        root = tmp_path / "media"
        dsn = f"file://{root}/?url=%2Fmedia%2F"
        storage = DSNStorage(dsn=dsn)
        storage.storage.write_bytes("photos/cat.bin", BODY)
        (tmp_path / "secret.txt").write_bytes(b"outside")
        (root / "link.txt").symlink_to(tmp_path / "secret.txt")
        with gunicorn("tests.djangoapp.wsgi:application", {MEDIA_ENV: dsn}) as base:
            yield base, storage

    def test_serves_and_refuses(self, server: tuple[str, DSNStorage]) -> None:
        base, _ = server
        status, head, body = raw_get(base, "/media/photos/cat.bin")
        assert status == 200
        assert body == BODY
        assert b"X-Content-Type-Options: nosniff" in head
        status, head, body = raw_get(base, "/media/photos/cat.bin", {"Range": "bytes=0-9"})
        assert (status, body) == (206, BODY[:10])
        for path in (
            "/media/../secret.txt",
            "/media/%2e%2e/secret.txt",
            "/media/..%2fsecret.txt",
            "/media/link.txt",
            "/media//etc/passwd",
        ):
            status, _, body = raw_get(base, path)
            assert status in (400, 404), path
            assert b"outside" not in body
        assert b"hello" in raw_get(base, "/hello")[2]

    def test_put_upload(self, server: tuple[str, DSNStorage]) -> None:
        base, storage = server
        url = storage.upload_url("up/g.txt", content_type="text/plain", max_size=100)
        host = urlsplit(base)
        conn = http.client.HTTPConnection(host.hostname or "", host.port, timeout=10)
        try:
            conn.request("PUT", url, body=b"from gunicorn", headers={"Content-Type": "text/plain"})
            assert conn.getresponse().status == 204
        finally:
            conn.close()
        assert storage.storage.read_bytes("up/g.txt") == b"from gunicorn"
