"""Real servers for the tests, one module per server, each started on a free loopback port.

* :mod:`.moto`: moto's S3, in-process (``mock_s3``) and as a server (``moto_server``);
* :mod:`.gunicorn`: an app under gunicorn, and raw HTTP requests to it;
* :mod:`.ftp`: an FTP server (pyftpdlib) for the third-party scheme example;
* :mod:`.azurite`: Azurite, the Azure Blob Storage emulator (an npm package).
* :mod:`.sshd`: OpenSSH's sshd with its own config, keys and known_hosts, for ``sftp:``.

This module holds what they share: a free port, and a process that is started, waited
for and stopped. Fixtures are session-scoped where a server can be shared; tests name the
fixture they need, and conftest.py makes them available.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The repository's root.
ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"server on port {port} did not start") from None
            time.sleep(0.1)


@contextmanager
def running(argv: list[str], port: int, **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` (a server that will listen on ``port``), wait until it accepts
    connections, and stop it when the block ends."""
    proc = subprocess.Popen(argv, **popen)
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
