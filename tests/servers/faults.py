"""A loopback HTTP proxy that puts faults between a client and a real S3 server.

Each request is forwarded to the server and its answer relayed, unless a rule matches it
first; a rule applies to the next ``times`` matching requests and then expires:

* ``status``: answer ``code`` with an S3 error body (``SlowDown``, ``InternalError``, ...)
  instead of forwarding;
* ``reset``: forward, then send ``after`` bytes of the answer and reset the connection
  (``before=True``: reset without forwarding, so the server never sees the request);
* ``truncate``: forward, then send the headers without Content-Length and half the body
  (or ``after`` bytes), and close: a body that ends early with nothing to tell;
* ``stall``: accept the request and answer nothing for ``seconds`` (then close);
* ``stall_body``: forward, then send the headers and ``after`` bytes of the body (none by
  default) and nothing more for ``seconds`` (then close): a server that stops mid-answer;
* ``delete_errors``: answer a bulk delete (``POST ?delete``) with 200 and an error for
  every key in it, as S3 does when it refuses some keys of a batch.

Everything stays on 127.0.0.1. The proxy runs in a thread of the test process, so tests
change its rules directly and read what it saw in ``requests``. The error bodies are S3's
XML; Azure's and Google's clients retry by the status alone, so the proxy stands in front
of Azurite and fake-gcs-server too.

:class:`TCPProxy` relays raw bytes (SSH) and can stop relaying at any moment: a server
that accepts and never answers, or one that goes silent in the middle of a session.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from .moto import make_bucket

__all__ = ["FaultProxy", "Rule", "TCPProxy", "fault_proxy"]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
}


@dataclass
class Rule:
    """One kind of fault for the next ``times`` requests that match."""

    fault: str
    method: str | None = None
    path_contains: str | None = None
    times: int = 1
    code: int = 503
    s3_code: str = "SlowDown"
    after: int | None = None
    seconds: float = 30.0
    before: bool = False
    hits: int = field(default=0, init=False)

    def matches(self, method: str, path: str) -> bool:
        return (
            self.hits < self.times
            and (self.method is None or self.method == method)
            and (self.path_contains is None or self.path_contains in path)
        )


class FaultProxy:
    """The proxy's rules and what it saw; see the module docstring."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.rules: list[Rule] = []
        #: ``(method, path, fault or "pass")`` for every request, in order.
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return self.endpoint.removeprefix("http://")

    def inject(self, fault: str, **options: object) -> Rule:
        """Add a rule (see :class:`Rule`) and return it, to read its ``hits`` later."""
        rule = Rule(fault, **options)  # type: ignore[arg-type]
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    self.requests.append((method, path, rule.fault))
                    return rule
            self.requests.append((method, path, "pass"))
            return None


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
        try:
            while self._one(proxy, upstream):
                pass
        except (OSError, http.client.HTTPException):
            pass
        finally:
            upstream.close()

    def _one(self, proxy: FaultProxy, upstream: http.client.HTTPConnection) -> bool:
        line = self.rfile.readline(65537)
        if not line.strip():
            return False
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers: list[tuple[str, str]] = []
        while (header := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        body = self._body(headers)
        rule = proxy._rule_for(method, target)
        if rule is not None and rule.fault == "stall":
            time.sleep(rule.seconds)
            return False
        if rule is not None and rule.fault == "status":
            self._send_error(rule, target)
            return True
        if rule is not None and rule.fault == "reset" and rule.before:
            self._reset()
            return False
        if rule is not None and rule.fault == "delete_errors":
            self._send_delete_errors(rule, body)
            return True
        upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                upstream.putheader(name, value)
        if body and not any(n.lower() == "content-length" for n, _ in headers):
            upstream.putheader("Content-Length", str(len(body)))
        upstream.endheaders(body or None)
        response = upstream.getresponse()
        data = response.read()
        head = [f"HTTP/1.1 {response.status} {response.reason}"]
        out = [(n, v) for n, v in response.getheaders() if n.lower() not in _HOP_BY_HOP]
        if rule is not None and rule.fault == "truncate":
            out = [(n, v) for n, v in out if n.lower() != "content-length"]
            cut = data[: rule.after if rule.after is not None else len(data) // 2]
            self._write(head, [*out, ("Connection", "close")], cut)
            return False
        if rule is not None and rule.fault == "stall_body":
            self.wfile.write(self._encode(head, out, data[: rule.after or 0]))
            self.wfile.flush()
            time.sleep(rule.seconds)
            return False
        if method != "HEAD":  # a HEAD's Content-Length is the object's, not its body's
            out = [(n, v) for n, v in out if n.lower() != "content-length"]
            out.append(("Content-Length", str(len(data))))
        if rule is not None and rule.fault == "reset":
            self.wfile.write(self._encode(head, out, data)[: rule.after or 0])
            self.wfile.flush()
            self._reset()
            return False
        self._write(head, out, data)
        return True

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends RST, not FIN: the client sees a reset.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _body(self, headers: list[tuple[str, str]]) -> bytes:
        values = {n.lower(): v for n, v in headers}
        if values.get("expect", "").lower() == "100-continue":
            # The client waits for this before it sends the body.
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        if "content-length" in values:
            return self.rfile.read(int(values["content-length"]))
        if values.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return b""

    def _send_error(self, rule: Rule, target: str) -> None:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{rule.s3_code}</Code>'
            f"<Message>injected by the fault proxy</Message><Resource>{target}</Resource>"
            "</Error>"
        ).encode()
        head = [f"HTTP/1.1 {rule.code} Injected"]
        self._write(
            head, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body
        )

    def _send_delete_errors(self, rule: Rule, request: bytes) -> None:
        keys = re.findall(rb"<Key>([^<]*)</Key>", request)
        errors = b"".join(
            b"<Error><Key>"
            + key
            + b"</Key><Code>"
            + rule.s3_code.encode()
            + b"</Code><Message>injected</Message></Error>"
            for key in keys
        )
        body = b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult>' + errors + b"</DeleteResult>"
        head = ["HTTP/1.1 200 OK"]
        self._write(
            head, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body
        )

    @staticmethod
    def _encode(head: list[str], headers: list[tuple[str, str]], body: bytes) -> bytes:
        lines = [*head, *(f"{n}: {v}" for n, v in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _write(self, head: list[str], headers: list[tuple[str, str]], body: bytes) -> None:
        self.wfile.write(self._encode(head, headers, body))
        self.wfile.flush()


class TCPProxy:
    """A loopback TCP relay to ``upstream`` (``host:port``) that can go silent.

    While :attr:`stalled` is set it relays nothing in either direction and holds what it
    receives, and the connections it accepts hear nothing: to a client, a server that
    accepts and never answers. The first ``drop`` connections are reset at once. Used as
    a context manager; leaving it closes everything.
    """

    def __init__(self, upstream: str, *, stalled: bool = False, drop: int = 0) -> None:
        self._drop = drop
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._stall = threading.Event()
        if stalled:
            self._stall.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def stalled(self) -> bool:
        return self._stall.is_set()

    def stall(self) -> None:
        """Stop relaying, from now on."""
        self._stall.set()

    def resume(self) -> None:
        """Relay again (what was held goes through)."""
        self._stall.clear()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._drop > 0:
                self._drop -= 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            self._sockets.append(client)
            threading.Thread(target=self._open, args=(client,), daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        while self._stall.is_set():  # accepted, never answered
            if self._closed.wait(0.1):
                return
        try:
            server = socket.create_connection(self._upstream, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        self._sockets.append(server)
        for src, dst in ((client, server), (server, client)):
            threading.Thread(target=self._relay, args=(src, dst), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while self._stall.is_set():  # hold it: the other side hears nothing
                    if self._closed.wait(0.1):
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> TCPProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def fault_proxy_session(moto_server: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_server)
    yield proxy
    proxy.close()


@pytest.fixture
def fault_proxy(fault_proxy_session: FaultProxy) -> Iterator[FaultProxy]:
    """The fault proxy in front of the moto server, with no rules, and a fresh bucket
    (``proxy.bucket``) made directly on the server."""
    fault_proxy_session.clear()
    fault_proxy_session.bucket = make_bucket(  # type: ignore[attr-defined]
        "http://" + fault_proxy_session.upstream
    )
    yield fault_proxy_session
    fault_proxy_session.clear()
