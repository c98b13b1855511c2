"""Serving through a real gunicorn: traversal attacks as raw request lines, and HTTP caching."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator

import pytest

from tests.servers import gunicorn, raw_get

SECRET = b"TOP SECRET, outside the media root"
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
    (tmp / "secret.txt").write_bytes(SECRET)
    root = tmp / "media"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "cat.jpg").write_bytes(b"\xff\xd8 not really a cat")
    (root / "big.bin").write_bytes(BIG)
    (root / ".env").write_bytes(SECRET)
    (root / "sub" / ".env").write_bytes(SECRET)
    (root / ".hidden" / "x.txt").write_bytes(SECRET)
    (root / "out").symlink_to(tmp)
    (root / "out-file.txt").symlink_to(tmp / "secret.txt")
    env = {"MEDIA_TEST_DSN": f"file://{root}/?url=%2Fmedia%2F", "MEDIA_TEST_INSTANCE": str(tmp)}
    with gunicorn("tests.gunicorn_app:app", env) as base:
        yield base


@pytest.mark.parametrize("path", ATTACKS, ids=lambda p: p[:45])
def test_attack_is_404(server: str, path: str) -> None:
    """Each attack, sent byte for byte, gets 404 (gunicorn itself may refuse with 400)."""
    status, head, body = raw_get(server, path)
    assert SECRET not in body
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
