"""Apps under a real gunicorn on a free loopback port, and raw HTTP requests to them."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import ROOT, free_port, running

__all__ = ["gunicorn", "raw_get"]


@contextmanager
def gunicorn(app: str, env: dict[str, str], *, workers: int = 1, cwd: Path = ROOT) -> Iterator[str]:
    """Run ``gunicorn app`` on a free loopback port; yield its base URL."""
    port = free_port()
    argv = [
        *(sys.executable, "-m", "gunicorn", "--workers", str(workers)),
        *("--bind", f"127.0.0.1:{port}", "--log-level", "warning", app),
    ]
    # After ours, the caller's own path (a worktree's src/ ahead of an installed copy).
    pythonpath = os.pathsep.join([str(ROOT), str(cwd), os.environ.get("PYTHONPATH", "")])
    with running(argv, port, cwd=cwd, env={**os.environ, **env, "PYTHONPATH": pythonpath}):
        yield f"http://127.0.0.1:{port}"


def raw_get(
    base: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Send ``GET path`` exactly as given (no client normalisation); return status, head, body."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head, body
