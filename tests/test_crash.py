"""Crash safety: a process killed mid-write leaves the old object or none, never a torn one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from storage_dsn import open_storage
from storage_dsn.backend import TEMP_PREFIX
from tests.conftest import KEY_ID, QUOTED_SECRET, make_bucket
from tests.servers.sshd import SSHServer

WRITER = textwrap.dedent(
    """
    import sys
    from storage_dsn import open_storage
    storage = open_storage(sys.argv[1])
    chunk = b"N" * (1024 * 1024)
    with storage.open("big.bin", "wb") as f:
        for i in range(int(sys.argv[2])):
            f.write(chunk)
            if i == 3:
                print("writing", flush=True)
                if sys.argv[3] == "park":  # wait mid-write to be killed: no race
                    sys.stdin.readline()
        print("closing", flush=True)
    print("done", flush=True)
    """
)


def kill_mid_write(
    dsn: str,
    megabytes: int,
    after: str,
    delay: float,
    ready: Callable[[], bool] = lambda: True,
) -> None:
    """Start a writer, wait for ``after`` on its stdout and for ``ready()``, then SIGKILL it
    after ``delay``."""
    park = "park" if after == "writing" else "run"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, dsn, str(megabytes), park],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == after:
                break
        else:  # pragma: no cover - the writer died on its own
            pytest.fail(f"writer exited ({proc.wait()}) before {after!r}")
        deadline = time.monotonic() + 30
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL


class TestLocal:
    @pytest.mark.parametrize("after", ["writing", "closing"])
    def test_old_content_survives(self, tmp_path: Path, after: str) -> None:
        """Killed while writing (or while committing) 256 MiB: the old file is intact."""
        dsn = f"file://{tmp_path}/media/"
        storage = open_storage(dsn)
        storage.write_bytes("big.bin", b"old content")
        kill_mid_write(dsn, 256, after, 0.05)
        data = storage.read_bytes("big.bin")
        assert data in (b"old content", b"N" * 256 * 1024 * 1024)
        assert data == b"old content" or after == "closing"
        assert list(storage.list()) == ["big.bin"]

    def test_no_file_when_new(self, tmp_path: Path) -> None:
        """Killed mid-write with no previous file: there is still no file."""
        dsn = f"file://{tmp_path}/media/"
        kill_mid_write(dsn, 256, "writing", 0.05)
        storage = open_storage(dsn)
        assert not storage.exists("big.bin")
        assert list(storage.list()) == []


@pytest.mark.s3
def test_s3_killed_upload_leaves_old_object(moto_server: str) -> None:
    """Killed while uploading 64 MiB to S3 over HTTP: the old object is intact."""
    bucket = make_bucket(moto_server)
    host = moto_server.removeprefix("http://")
    dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{host}/{bucket}/m/"
    storage = open_storage(dsn)
    storage.write_bytes("big.bin", b"old content")
    kill_mid_write(dsn, 64, "closing", 0.2)
    data = storage.read_bytes("big.bin")
    assert data in (b"old content", b"N" * 64 * 1024 * 1024)


def test_sftp_killed_upload_leaves_old_file(sshd_server: SSHServer) -> None:
    """Killed while uploading 64 MiB over SFTP: the old file is intact, and the half
    upload left under a temporary name is never listed."""
    directory = sshd_server.new_directory()
    dsn = sshd_server.dsn(directory)
    storage = open_storage(dsn)
    storage.write_bytes("big.bin", b"old content")

    def uploading() -> bool:  # the server is this machine: look at its disk
        return any(p.stat().st_size > 0 for p in directory.glob(f"{TEMP_PREFIX}*"))

    kill_mid_write(dsn, 64, "closing", 0.0, ready=uploading)
    assert storage.read_bytes("big.bin") == b"old content"
    assert list(storage.list()) == ["big.bin"]
    assert len(list(directory.glob(f"{TEMP_PREFIX}*"))) == 1  # left behind, hidden
