"""The ``sftp:`` scheme: its DSN, host key checks and renames, against a real sshd.

The storage contract runs on it too (kind ``sftp`` in tests/test_storage.py); this module
holds what only SFTP has.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from storage_dsn import Storage, open_storage, parse_dsn
from storage_dsn.backend import TEMP_PREFIX
from storage_dsn.errors import InvalidDSNError
from storage_dsn.schemes.sftp import HostKeyError, details
from tests.servers.sshd import SSHServer


def _storage(server: SSHServer, known_hosts: str | None = None, **environ: str) -> Storage:
    """A fresh storage on the server (see SSHServer.dsn for ``known_hosts``), opened with
    ``environ`` (no HOME unless given: nothing of this machine's ~/.ssh is read)."""
    dsn = server.dsn(server.new_directory(), known_hosts=known_hosts)
    return open_storage(dsn, environ={"HOME": "/nonexistent", **environ})


class TestParse:
    def test_key_file_and_known_hosts(self) -> None:
        """key_file becomes asyncssh's client_keys; known_hosts is passed as given."""
        config = parse_dsn(
            "sftp://deploy@files.example.com:2222/srv/media/"
            "?key_file=%2Fetc%2Fmedia%2Fid_ed25519&known_hosts=~%2F.ssh%2Fmedia_hosts"
        )
        assert config.options["client_keys"] == ("/etc/media/id_ed25519",)
        assert config.options["known_hosts"] == "~/.ssh/media_hosts"
        assert config.settings == {}

    def test_known_hosts_none(self) -> None:
        """known_hosts=none is the one way to turn the check off."""
        config = parse_dsn("sftp://u@host/srv/?known_hosts=none")
        assert config.options["known_hosts"] is None
        assert "known_hosts" not in parse_dsn("sftp://u@host/srv/").options

    @pytest.mark.parametrize("param", ["key_file", "known_hosts"])
    @pytest.mark.parametrize("value", ["", "relative%2Fpath", "no"])
    def test_paths_must_be_absolute(self, param: str, value: str) -> None:
        """A relative or empty path is refused when the DSN is parsed."""
        with pytest.raises(InvalidDSNError, match=f"{param}.*absolute path"):
            parse_dsn(f"sftp://u@host/srv/?{param}={value}")

    def test_check_rows(self) -> None:
        """storage-dsn check says how it logs in and how the host key is checked."""
        rows = dict(details(parse_dsn("sftp://u:pw@host/srv/?known_hosts=none")))
        assert rows == {
            "host": "host:22",
            "user": "u",
            "login": "password",
            "host key": "NOT CHECKED (known_hosts=none)",
        }
        rows = dict(details(parse_dsn("sftp://u@host:2222/srv/?key_file=%2Fk")))
        assert rows["login"] == "key file /k"
        assert rows["host key"] == "checked against ~/.ssh/known_hosts"


class TestHostKeys:
    def test_unknown_host(self, sshd_server: SSHServer, tmp_path: Path) -> None:
        """A host missing from known_hosts is a HostKeyError naming it and the fix."""
        empty = tmp_path / "known_hosts"
        empty.write_text("")
        storage = _storage(sshd_server, str(empty))
        with pytest.raises(HostKeyError) as info:
            storage.exists("a.txt")
        message = str(info.value)
        assert sshd_server.host in message
        assert f"ssh-keyscan -p {sshd_server.port} 127.0.0.1 >> {empty}" in message
        assert "\n" not in message
        assert isinstance(info.value, OSError)
        assert not isinstance(info.value, FileNotFoundError)

    def test_changed_key(self, sshd_server: SSHServer, tmp_path: Path) -> None:
        """Another key on file for the host is refused, and said to be a change."""
        other = tmp_path / "other"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True
        )
        kind, key = Path(f"{other}.pub").read_text().split()[:2]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{sshd_server.port} {kind} {key}\n")
        with pytest.raises(HostKeyError, match=r"is not the one .* holds for it"):
            _storage(sshd_server, str(known)).read_bytes("a.txt")

    def test_default_is_the_users_known_hosts(self, sshd_server: SSHServer, tmp_path: Path) -> None:
        """Without known_hosts=, ~/.ssh/known_hosts of the environ's HOME is used."""
        with pytest.raises(HostKeyError, match=f"{tmp_path}/.ssh/known_hosts is missing"):
            _storage(sshd_server, "", HOME=str(tmp_path)).exists("a.txt")
        (tmp_path / ".ssh").mkdir()
        (tmp_path / ".ssh/known_hosts").write_text(sshd_server.known_hosts.read_text())
        storage = _storage(sshd_server, "", HOME=str(tmp_path))
        storage.write_bytes("a.txt", b"checked")
        assert storage.read_bytes("a.txt") == b"checked"

    def test_none_skips_the_check_and_warns(
        self, sshd_server: SSHServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """known_hosts=none connects to any key, and says so in the log."""
        storage = _storage(sshd_server, "none")
        with caplog.at_level(logging.WARNING, logger="storage_dsn"):
            storage.write_bytes("a.txt", b"unchecked")
        assert storage.read_bytes("a.txt") == b"unchecked"
        [record] = [r for r in caplog.records if r.name.startswith("storage_dsn")]
        assert "not checked" in record.getMessage()
        assert sshd_server.host in record.getMessage()


class TestLogin:
    def test_missing_key_file(self, sshd_server: SSHServer, tmp_path: Path) -> None:
        """An unreadable key_file is a PermissionError, not a missing object."""
        storage = open_storage(sshd_server.dsn(tmp_path, key_file=tmp_path / "nope"))
        with pytest.raises(PermissionError, match=r"key_file .*nope cannot be read"):
            storage.exists("a.txt")

    def test_connection_refused(self, sshd_server: SSHServer) -> None:
        """No server on the port: a ConnectionError naming the host."""
        from tests.servers import free_port

        dsn = sshd_server.dsn(sshd_server.new_directory())
        port = free_port()
        dsn = dsn.replace(f":{sshd_server.port}/", f":{port}/")
        with pytest.raises(ConnectionError, match=f"cannot connect to 127.0.0.1:{port}"):
            open_storage(dsn).exists("a.txt")


def _server_path(storage: Storage, key: str = "") -> Path:
    return Path(storage.config.root, key)


class TestRenames:
    def test_replacing_write_is_atomic(self, sshd_server: SSHServer) -> None:
        """While writes replace a key, a reader always finds one whole version."""
        storage = _storage(sshd_server)
        bodies = [bytes([i]) * 200_000 for i in range(4)]
        storage.write_bytes("k.bin", bodies[0])
        done = threading.Event()
        seen: list[Any] = []

        def read() -> None:
            while not done.is_set():
                try:
                    seen.append(storage.read_bytes("k.bin"))
                except FileNotFoundError as exc:
                    seen.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for i in range(40):
                storage.write_bytes("k.bin", bodies[i % 4])
        finally:
            done.set()
            reader.join()
        assert seen
        assert all(s in bodies for s in seen)

    def test_losers_leave_no_temporary_file(self, sshd_server: SSHServer) -> None:
        """A refused create removes its upload; only the winner's file is on the server."""
        storage = _storage(sshd_server)
        storage.save("d/k.txt", io.BytesIO(b"first"), overwrite=False)
        for _ in range(3):
            with pytest.raises(FileExistsError):
                storage.save("d/k.txt", io.BytesIO(b"later"), overwrite=False)
        assert os.listdir(_server_path(storage, "d")) == ["k.txt"]
        assert storage.read_bytes("d/k.txt") == b"first"

    def test_without_posix_rename(
        self, sshd_server: SSHServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A server without posix-rename@openssh.com still gets replacing writes.

        asyncssh raises SFTPOpUnsupported itself when the server did not offer the
        extension; OpenSSH always offers it, so that answer is stood in for here.
        """
        import asyncssh

        async def unsupported(self: Any, oldpath: Any, newpath: Any) -> None:
            raise asyncssh.SFTPOpUnsupported("posix-rename not supported")

        storage = _storage(sshd_server)
        storage.write_bytes("d/k.txt", b"old")
        monkeypatch.setattr(asyncssh.SFTPClient, "posix_rename", unsupported)
        storage.write_bytes("d/k.txt", b"new")
        storage.write_bytes("d/fresh.txt", b"created")
        assert storage.read_bytes("d/k.txt") == b"new"
        assert sorted(os.listdir(_server_path(storage, "d"))) == ["fresh.txt", "k.txt"]

    def test_directories_created_as_needed(self, sshd_server: SSHServer) -> None:
        """A key's directories are made on the server on the first write, temp names never
        listed."""
        storage = _storage(sshd_server)
        storage.write_many({"a/b/c/one.txt": b"1", "a/b/two.txt": b"2"})
        assert list(storage.list()) == ["a/b/c/one.txt", "a/b/two.txt"]
        leftovers = [
            name
            for _, _, files in os.walk(_server_path(storage))
            for name in files
            if name.startswith(TEMP_PREFIX)
        ]
        assert leftovers == []


class Proxy:
    """A loopback TCP proxy to a port, whose connections can be cut as a server's restart
    or a firewall's idle timeout would."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for s in (client, upstream):  # SSH's small packets, without Nagle's waits
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            _shut(s)

    def cut(self) -> None:
        """Close every connection through the proxy; new ones are still accepted."""
        for s in self.sockets:
            _shut(s)
        self.sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def _shut(s: socket.socket) -> None:
    with suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()


@contextmanager
def proxy_to(port: int) -> Iterator[Proxy]:
    proxy = Proxy(port)
    try:
        yield proxy
    finally:
        proxy.close()


def test_reconnects_after_the_connection_drops(sshd_server: SSHServer, tmp_path: Path) -> None:
    """A connection the other end closed is replaced on the next call, not kept failing."""
    with proxy_to(sshd_server.port) as proxy:
        line = sshd_server.known_hosts.read_text().split(" ", 1)[1]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{proxy.port} {line}")
        dsn = sshd_server.dsn(sshd_server.new_directory(), known_hosts=str(known))
        storage = open_storage(dsn.replace(f":{sshd_server.port}/", f":{proxy.port}/"))
        storage.write_bytes("a.txt", b"before")
        first: Any = storage.backend.fs  # type: ignore[attr-defined]
        client = storage.backend.base.client  # type: ignore[attr-defined]
        proxy.cut()
        deadline = time.monotonic() + 10
        while not client.is_closed() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.is_closed()
        assert storage.read_bytes("a.txt") == b"before"
        storage.write_bytes("b.txt", b"after")
        assert list(storage.list()) == ["a.txt", "b.txt"]
        assert storage.backend.fs is not first  # type: ignore[attr-defined]
