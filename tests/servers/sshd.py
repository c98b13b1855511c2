"""OpenSSH's sshd in its own process on a free loopback port, shared by the session.

It runs with a config file of its own in a temporary directory: its own ed25519 host key,
one authorized client key (generated here), internal-sftp, no PAM, and no other address
than 127.0.0.1. The user is whoever runs the tests (root in CI). ``/usr/sbin/sshd`` comes
from Debian's ``openssh-server``: the nox ``tests`` session installs it as root, and so
does this fixture when it finds it missing; anyone else is told the command to run.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from . import free_port, wait_for_port

__all__ = ["SFTP_WRONG_PASSWORD", "SSHD", "SSHServer", "sshd_server"]

SSHD = "/usr/sbin/sshd"
#: A password no test user has, with characters that need percent-encoding in a DSN.
SFTP_WRONG_PASSWORD = "wr0ng/Pa$$:word@odd+Chars"


@dataclass
class SSHServer:
    """A running sshd, the keys to log in to it, and a directory for the tests' files."""

    port: int
    #: The user the tests log in as: the one running them.
    user: str
    #: The authorized client key (private half) and one the server does not know.
    key_file: Path
    wrong_key_file: Path
    #: A known_hosts file holding the server's host key for ``[127.0.0.1]:PORT``.
    known_hosts: Path
    #: The directory under which each test gets its own.
    root: Path
    #: Seconds from start to the first accepted connection.
    started_in: float = 0.0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def new_directory(self) -> Path:
        """A fresh path under :attr:`root` (not created: the storage creates it)."""
        return self.root / f"t-{uuid.uuid4().hex[:12]}"

    def dsn(
        self, directory: Path, *, key_file: Path | None = None, known_hosts: str | None = None
    ) -> str:
        """The ``sftp:`` DSN of ``directory``, logging in with ``key_file`` (the good key).

        ``known_hosts``: the server's own file when ``None``; ``""`` leaves the parameter
        out (the user's file); anything else is the parameter's value.
        """
        query = f"key_file={quote(str(key_file or self.key_file), safe='')}"
        known = str(self.known_hosts) if known_hosts is None else known_hosts
        if known:
            query += f"&known_hosts={quote(known, safe='')}"
        return f"sftp://{self.user}@{self.host}{directory}/?{query}"


def _installed_sshd() -> str:
    if os.path.exists(SSHD):
        return SSHD
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "openssh-server"],
        ):
            subprocess.run(argv, check=False, env=env, capture_output=True)
    if not os.path.exists(SSHD):
        raise RuntimeError(
            f"OpenSSH's server ({SSHD}) is not installed; install it with: "
            "sudo apt-get install openssh-server"
        )
    return SSHD


def _keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "storage-dsn-tests", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def _config(directory: Path, port: int, authorized: Path, host_key: Path) -> Path:
    lines = [
        "ListenAddress 127.0.0.1",
        f"Port {port}",
        f"HostKey {host_key}",
        f"PidFile {directory / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "UsePAM no",
        "Subsystem sftp internal-sftp",
        # The tests run as root in CI: keys only, as a real server would allow root.
        "PermitRootLogin prohibit-password",
        # The temporary directory is not laid out as sshd wants ~/.ssh to be.
        "StrictModes no",
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
        "UseDNS no",
        "LogLevel VERBOSE",
    ]
    path = directory / "sshd_config"
    path.write_text("\n".join(lines) + "\n")
    return path


def _log_in(server: SSHServer) -> None:
    """One SFTP session with the test key: the server is up only when this works (sshd
    without PAM refuses, say, a root whose password is locked with '!')."""
    import asyncio

    import asyncssh

    async def session() -> None:
        async with (
            asyncssh.connect(
                "127.0.0.1",
                port=server.port,
                username=server.user,
                client_keys=[str(server.key_file)],
                known_hosts=str(server.known_hosts),
                agent_path=None,
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await sftp.listdir(str(server.root))

    asyncio.run(session())


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """An sshd on 127.0.0.1 that accepts the test key; fails (not skips) if it cannot start."""
    sshd = _installed_sshd()
    directory = tmp_path_factory.mktemp("sshd")
    host_key = _keygen(directory / "host_ed25519")
    client_key = _keygen(directory / "client_ed25519")
    wrong_key = _keygen(directory / "wrong_ed25519")
    authorized = directory / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    port = free_port()
    known_hosts = directory / "known_hosts"
    public = Path(f"{host_key}.pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    config = _config(directory, port, authorized, host_key)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation dir
    root = directory / "files"
    root.mkdir()
    log = (directory / "sshd.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        server = SSHServer(
            port=port,
            user=getpass.getuser(),
            key_file=client_key,
            wrong_key_file=wrong_key,
            known_hosts=known_hosts,
            root=root,
        )
        try:
            wait_for_port(port, proc)
            _log_in(server)
        except Exception as exc:
            tail = (directory / "sshd.log").read_bytes()[-2000:].decode(errors="replace")
            raise RuntimeError(
                f"sshd did not start or refused the test key ({exc!r}); its log ends:\n{tail}"
            ) from None
        server.started_in = time.monotonic() - started
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
