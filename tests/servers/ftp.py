"""An FTP server (pyftpdlib) in its own process on a free loopback port, with one user."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import free_port, running

__all__ = ["FTP_PASSWORD", "FTP_USER", "ftp_server"]

FTP_USER = "media"
FTP_PASSWORD = "ftp-pa$$word/with:odd@chars"

_SERVER = """
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

port, home, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
authorizer = DummyAuthorizer()
authorizer.add_user(user, password, home, perm="elradfmwMT")
FTPHandler.authorizer = authorizer
FTPServer(("127.0.0.1", port), FTPHandler).serve_forever()
"""


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``(host:port, home directory)`` of an FTP server whose user owns that directory."""
    home = tmp_path_factory.mktemp("ftp-home")
    port = free_port()
    argv = [sys.executable, "-c", _SERVER, str(port), str(home), FTP_USER, FTP_PASSWORD]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with running(argv, port, **quiet):
        yield f"127.0.0.1:{port}", home
