"""The local backend: what only a directory on this machine has (paths, symlinks, modes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage_dsn import open_storage
from tests.conftest import write_then_fail


class TestLocalFiles:
    def test_mode_follows_umask(self, tmp_path: Path) -> None:
        """Written files get open()'s mode (0666 less the umask), readable by a web server."""
        storage = open_storage(f"file://{tmp_path}/m/")
        storage.write_bytes("a/b.txt", b"x")
        mask = os.umask(0o022)
        os.umask(mask)
        path = storage.local_path("a/b.txt")
        assert path is not None
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask

    def test_no_temp_files_left(self, tmp_path: Path) -> None:
        """Successful and failed writes leave no temporary file behind."""
        storage = open_storage(f"file://{tmp_path}/m/")
        storage.write_bytes("new/dir/a.txt", b"x")
        with pytest.raises(RuntimeError):
            write_then_fail(storage, "new/dir/b.txt", b"y")
        assert sorted(p.name for p in (tmp_path / "m" / "new" / "dir").iterdir()) == ["a.txt"]
