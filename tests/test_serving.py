"""The WSGI media server: HTTP semantics through Flask's test client, then the same server
under a real gunicorn with attacks sent as raw request lines."""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.http import http_date

from storage_dsn import NoPublicURLError
from tests.apps import BODY, assert_secure, make_app
from tests.servers.gunicorn import gunicorn, raw_get


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


class TestOverrides:
    """S3's response-content-disposition and response-content-type, as Storage.url writes
    them for a storage served here."""

    def url(self, app: Flask, **overrides: str) -> str:
        with app.app_context():
            return str(app.extensions["storage_dsn"].storage.url("photos/cat.bin", **overrides))

    def test_download_name_and_type(self, app: Flask) -> None:
        """Both overrides are honoured on GET and HEAD; the security headers stay."""
        url = self.url(app, download_name="Résumé 2024.pdf", content_type="application/pdf")
        client = app.test_client()
        for r in (client.get(url), client.head(url)):
            assert r.status_code == 200
            assert r.headers["Content-Type"] == "application/pdf"
            assert r.headers["Content-Disposition"] == (
                'attachment; filename="Resume 2024.pdf"; '
                "filename*=UTF-8''R%C3%A9sum%C3%A9%202024.pdf"
            )
            assert_secure(r)
        assert client.get(url).data == BODY

    def test_validators_and_ranges_unchanged(self, app: Flask) -> None:
        """The ETag is the file's; conditionals and ranges work as without overrides."""
        client = app.test_client()
        plain = client.get("/media/photos/cat.bin")
        url = self.url(app, download_name="cat.bin")
        r = client.get(url, headers={"Range": "bytes=0-9"})
        assert r.status_code == 206
        assert r.data == BODY[:10]
        assert r.headers["ETag"] == plain.headers["ETag"]
        assert r.headers["Content-Disposition"].startswith("attachment;")
        assert client.get(url, headers={"If-None-Match": plain.headers["ETag"]}).status_code == 304

    def test_other_parameters_ignored(self, app: Flask) -> None:
        """A cache-busting query is no override."""
        r = app.test_client().get("/media/photos/cat.bin?v=3")
        assert r.status_code == 200
        assert "Content-Disposition" not in r.headers

    @pytest.mark.parametrize(
        "query",
        [
            "response-content-type=text/html%0d%0aSet-Cookie:%20a=b",
            "response-content-type=",
            "response-content-type=html",
            "response-content-disposition=inline",
            "response-content-disposition=attachment",
            "response-content-disposition=attachment%3B%20filename%3D%22a%22%3B%20filename%2A%3DUTF-8%27%27b",
            "response-content-disposition=attachment%3B%20filename%3D%22x%22%0d%0aSet-Cookie%3A%20a",
            "response-content-disposition=attachment%3B%20filename%3D%22a%22%3B%20filename%2A%3DUTF-8%27%27%FF",
            "response-content-type=text/plain&response-content-type=text/html",
            "response-content-type=%FF",
        ],
        ids=[
            "crlf",
            "empty",
            "no-subtype",
            "inline",
            "bare",
            "fallback-mismatch",
            "header-split",
            "bad-utf8-name",
            "repeated",
            "bad-utf8",
        ],
    )
    def test_bad_values(self, app: Flask, query: str) -> None:
        """Anything but what Storage.url writes is 400, and no header is smuggled."""
        r = app.test_client().get(f"/media/photos/cat.bin?{query}")
        assert r.status_code == 400
        assert "Set-Cookie" not in r.headers
        assert_secure(r)

    def test_redirects_carry_overrides(self, tmp_path: Path) -> None:
        """A remote storage redirects to its own URL with the same overrides (or 404 where
        it cannot make one)."""
        dsn = "s3://AKIAEXAMPLE:secret@bucket.s3.eu-west-1.amazonaws.com/m/?qs_auth=true"
        app = make_app(tmp_path, STORAGE_DSN=dsn)
        storage = app.extensions["storage_dsn"].storage
        try:
            expected: str | None = storage.url("a.jpg", content_type="image/png")
        except NoPublicURLError:
            expected = None
        r = app.test_client().get("/media/a.jpg?response-content-type=image%2Fpng")
        if expected is None:
            assert r.status_code == 404
        else:
            assert r.status_code == 302
            assert "response-content-type=image%2Fpng" in r.headers["Location"]
            assert r.headers["Cache-Control"] == "no-store"


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


# --- under a real gunicorn ----------------------------------------------------------

OUTSIDE = b"TOP SECRET, outside the media root"
BIG = os.urandom(1024 * 1024 + 3)

ATTACKS = [
    "/media/../secret.txt",
    "/media/../../etc/passwd",
    "/media/%2e%2e/secret.txt",
    "/media/%2E%2E%2Fsecret.txt",
    "/media/..%2fsecret.txt",
    "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/media/%252e%252e/secret.txt",
    "/media/%252e%252e%252fsecret.txt",
    "/media/%c0%ae%c0%ae/secret.txt",
    "/media/%c0%ae%c0%ae%c0%afsecret.txt",
    "/media/%e0%80%ae%e0%80%ae/secret.txt",
    "/media//etc/passwd",
    "/media/%2fetc%2fpasswd",
    "/media/C:%5c..%5csecret.txt",
    "/media/c:/secret.txt",
    "/media/..%5csecret.txt",
    "/media/..\\secret.txt",
    "/media/a%00b",
    "/media/cat.jpg%00.txt",
    "/media/.env",
    "/media/.hidden/x.txt",
    "/media/sub/.env",
    "/media/sub",
    "/media/sub/",
    "/media/",
    "/media/" + "a" * 300,
    "/media/" + "a/" * 400 + "x",
    "/media/out/secret.txt",
    "/media/out-file.txt",
    "/media/./cat.jpg",
    "/media/sub/../../secret.txt",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("gunicorn")
    (tmp / "secret.txt").write_bytes(OUTSIDE)
    root = tmp / "media"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "cat.jpg").write_bytes(b"\xff\xd8 not really a cat")
    (root / "big.bin").write_bytes(BIG)
    (root / ".env").write_bytes(OUTSIDE)
    (root / "sub" / ".env").write_bytes(OUTSIDE)
    (root / ".hidden" / "x.txt").write_bytes(OUTSIDE)
    (root / "out").symlink_to(tmp)
    (root / "out-file.txt").symlink_to(tmp / "secret.txt")
    env = {"MEDIA_TEST_DSN": f"file://{root}/?url=%2Fmedia%2F", "MEDIA_TEST_INSTANCE": str(tmp)}
    with gunicorn("tests.gunicorn_app:app", env) as base:
        yield base


@pytest.mark.parametrize("path", ATTACKS, ids=lambda p: p[:45])
def test_attack_is_404(server: str, path: str) -> None:
    """Each attack, sent byte for byte, gets 404 (gunicorn itself may refuse with 400)."""
    status, head, body = raw_get(server, path)
    assert OUTSIDE not in body
    assert status in (400, 404), (status, head)
    if status == 404:
        assert b"X-Content-Type-Options: nosniff" in head


def test_app_still_served(server: str) -> None:
    """Non-media paths reach the Flask app."""
    assert raw_get(server, "/hello")[2] == b"hello"


def test_big_file_whole(server: str) -> None:
    """A 1 MiB file arrives whole (sendfile through wsgi.file_wrapper)."""
    status, head, body = raw_get(server, "/media/big.bin")
    assert status == 200
    assert body == BIG
    assert f"Content-Length: {len(BIG)}".encode() in head


def request(
    server: str, method: str, path: str, headers: dict[str, str]
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(server.removeprefix("http://"), timeout=10)
    conn.request(method, path, headers=headers)
    return conn.getresponse()


class TestOverTheWire:
    def test_revalidation(self, server: str) -> None:
        """ETag and Last-Modified round-trip into 304s."""
        first = request(server, "GET", "/media/cat.jpg", {})
        assert first.read() == b"\xff\xd8 not really a cat"
        etag, last = first.getheader("ETag"), first.getheader("Last-Modified")
        assert etag
        assert last
        for headers in ({"If-None-Match": etag}, {"If-Modified-Since": last}):
            r = request(server, "GET", "/media/cat.jpg", headers)
            assert r.status == 304
            assert r.read() == b""
        assert request(server, "GET", "/media/cat.jpg", {"If-Match": '"x"'}).status == 412

    @pytest.mark.parametrize(
        ("header", "start", "stop"),
        [
            ("bytes=0-0", 0, 1),
            ("bytes=-10", len(BIG) - 10, len(BIG)),
            ("bytes=1000-", 1000, len(BIG)),
            ("bytes=65530-131080", 65530, 131081),
        ],
    )
    def test_ranges(self, server: str, header: str, start: int, stop: int) -> None:
        """Single ranges are 206 with exactly the bytes asked for."""
        r = request(server, "GET", "/media/big.bin", {"Range": header})
        assert r.status == 206
        assert r.read() == BIG[start:stop]
        assert r.getheader("Content-Range") == f"bytes {start}-{stop - 1}/{len(BIG)}"

    def test_unsatisfiable(self, server: str) -> None:
        """A range past the end is 416 with bytes */LEN."""
        r = request(server, "GET", "/media/big.bin", {"Range": f"bytes={len(BIG)}-"})
        assert r.status == 416
        assert r.getheader("Content-Range") == f"bytes */{len(BIG)}"

    def test_head_and_405(self, server: str) -> None:
        """HEAD has no body; other methods are 405 with Allow."""
        r = request(server, "HEAD", "/media/big.bin", {})
        assert r.status == 200
        assert r.getheader("Content-Length") == str(len(BIG))
        assert r.read() == b""
        r = request(server, "DELETE", "/media/big.bin", {})
        assert r.status == 405
        assert r.getheader("Allow") == "GET, HEAD"


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """gunicorn (2 workers) serving a root that tests may change under it."""
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "secret.txt").write_bytes(OUTSIDE)
    root = tmp / "media"
    root.mkdir()
    (root / "plain.txt").write_bytes(b"plain")
    env = {"MEDIA_TEST_DSN": f"file://{root}/?url=%2Fmedia%2F", "MEDIA_TEST_INSTANCE": str(tmp)}
    with gunicorn("tests.gunicorn_app:app", env, workers=2) as base:
        yield base, root


def test_symlink_swap_race_leaks_nothing(hostile_root: tuple[str, Path]) -> None:
    """A file swapped for a symlink out of the root, in a loop, while clients fetch it:
    every response is the inside file or a 404, never a byte of the outside one."""
    import threading

    base, root = hostile_root
    target, inside = root / "race.txt", b"inside, safe"
    stop = threading.Event()

    def attacker() -> None:
        while not stop.is_set():
            (root / "race.new").write_bytes(inside)
            os.replace(root / "race.new", target)
            os.symlink(root.parent / "secret.txt", root / "race.link")
            os.replace(root / "race.link", target)

    statuses: list[int] = []
    wrong: list[tuple[int, bytes]] = []

    def client() -> None:
        conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        while not stop.is_set():
            conn.request("GET", "/media/race.txt")
            response = conn.getresponse()
            body = response.read()
            statuses.append(response.status)
            if OUTSIDE in body or (response.status != 404 and body != inside):
                wrong.append((response.status, body[:80]))
        conn.close()

    threads = [threading.Thread(target=attacker)] + [
        threading.Thread(target=client) for _ in range(3)
    ]
    for t in threads:
        t.start()
    time.sleep(3)  # bounded: the race runs for three seconds
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert wrong == []
    assert statuses.count(200) > 0  # both states were seen
    assert statuses.count(404) > 0


def test_fifos_do_not_hang_workers(hostile_root: tuple[str, Path]) -> None:
    """Requests for FIFOs in the root are 404 at once; the workers keep answering."""
    base, root = hostile_root
    for i in range(16):
        os.mkfifo(root / f"pipe{i}.jpg")
    for i in range(16):
        assert raw_get(base, f"/media/pipe{i}.jpg")[0] == 404
    answered = [raw_get(base, "/media/plain.txt")[2] for _ in range(20)]
    assert answered == [b"plain"] * 20
