"""A loopback HTTP server that refuses every request at once: ``403`` with an error body.

For tests that need an operation to fail fast on any HTTP backend: a closed port fails
fast too, except on Azure, whose SDK retries a refused connection with backoff for about
a minute and a half, while a 403 is final for every SDK. The body is shaped as S3's and
Azure's errors (``<Error><Code>``) and says nothing of the request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

__all__ = ["refusing_server"]

_BODY = (
    b"<?xml version='1.0' encoding='utf-8'?>"
    b"<Error><Code>AccessDenied</Code><Message>refused by the test server</Message></Error>"
)


class _Refuse(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(_BODY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(_BODY)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the tests read what the clients say, not the server


@pytest.fixture(scope="session")
def refusing_server() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a server that answers every request with 403."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
