"""The local backend: what only a directory on this machine has (paths, symlinks, modes)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from storage_dsn import InvalidKeyError, open_storage
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


class TestHostileFiles:
    """What another process may do inside a served root, at the worst moment."""

    def test_swap_between_check_and_open(self, tmp_path: Path, monkeypatch: Any) -> None:
        """A symlink swapped in after the path was checked is caught on the open file."""
        (tmp_path / "secret.txt").write_bytes(b"TOP SECRET")
        storage = open_storage(f"file://{tmp_path}/m/")
        storage.write_bytes("photo.jpg", b"photo")
        backend: Any = storage.backend
        checked = backend.resolve

        def swap_after_check(key: str) -> str:
            path: str = checked(key)  # a regular file inside the root, so far
            os.symlink(tmp_path / "secret.txt", f"{path}.swap")
            os.replace(f"{path}.swap", path)  # the attacker's rename, in between
            return path

        monkeypatch.setattr(backend, "resolve", swap_after_check)
        with pytest.raises(FileNotFoundError):
            backend.open_file("photo.jpg")
        with pytest.raises(FileNotFoundError):
            storage.read_bytes("photo.jpg")

    def test_without_proc_no_symlink_is_followed(self, tmp_path: Path, monkeypatch: Any) -> None:
        """Where the kernel cannot name an open file, no symlink is followed at all."""
        from storage_dsn.schemes import local

        monkeypatch.setattr(local, "_FD_PATHS", None)
        storage = open_storage(f"file://{tmp_path}/m/")
        storage.write_bytes("real/a.txt", b"a")
        (tmp_path / "m" / "alias.txt").symlink_to(tmp_path / "m" / "real" / "a.txt")
        assert storage.read_bytes("real/a.txt") == b"a"
        with pytest.raises(FileNotFoundError):
            storage.read_bytes("alias.txt")

    def test_fifo_is_not_a_file(self, tmp_path: Path) -> None:
        """A FIFO (or device) in the root is no object: refused at once, never waited on."""
        storage = open_storage(f"file://{tmp_path}/m/")
        storage.write_bytes("a.txt", b"a")
        os.mkfifo(tmp_path / "m" / "pipe.jpg")
        for call in (storage.read_bytes, storage.stat, storage.backend.open_file):
            with pytest.raises(FileNotFoundError):
                call("pipe.jpg")
        assert not storage.exists("pipe.jpg")
        assert list(storage.list()) == ["a.txt"]


class TestLongNames:
    NAME = "n" * 300 + ".jpg"

    @pytest.mark.parametrize("call", ["write_bytes", "save", "open", "read_bytes", "exists"])
    def test_too_long_for_a_file(self, tmp_path: Path, call: str) -> None:
        """A name no file system holds is an InvalidKeyError saying why, before any I/O."""
        storage = open_storage(f"file://{tmp_path}/m/")
        calls = {
            "write_bytes": lambda: storage.write_bytes(f"d/{self.NAME}", b"x"),
            "save": lambda: storage.save(f"d/{self.NAME}", io.BytesIO(b"x")),
            "open": lambda: storage.open(f"d/{self.NAME}", "wb"),
            "read_bytes": lambda: storage.read_bytes(f"d/{self.NAME}"),
            "exists": lambda: storage.exists(f"d/{self.NAME}"),
        }
        with pytest.raises(InvalidKeyError, match="255"):
            calls[call]()
        assert not (tmp_path / "m").exists()

    def test_upload_names_are_shortened(self, tmp_path: Path) -> None:
        """Media.save shortens an uploaded file's name, keeping its extension."""
        from flask import Flask
        from werkzeug.datastructures import FileStorage

        from storage_dsn.flask import Media

        app = Flask("long", instance_path=str(tmp_path / "instance"))
        app.config["STORAGE_DSN"] = f"file://{tmp_path}/m/?url=%2Fmedia%2F"
        media = Media(app, environ={})
        with app.app_context():
            upload = FileStorage(io.BytesIO(b"jpeg"), filename=self.NAME)
            key = media.save(upload, prefix="up/")
            again = media.save(FileStorage(io.BytesIO(b"2nd"), filename=self.NAME), prefix="up/")
            assert media.storage.read_bytes(key) == b"jpeg"
        assert key.endswith(".jpg")
        assert len(key) <= len("up/") + 128
        assert again != key
        assert again.endswith(".jpg")
        client = app.test_client()
        assert client.get(f"/media/d/{self.NAME}").status_code == 404
