"""Writing one object by each write path a user has, for the upload-settings tests of every
cloud backend (imported by their test modules)."""

from __future__ import annotations

import io
from pathlib import Path

from storage_dsn import Storage
from storage_dsn.cli import main

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class Stream(io.RawIOBase):
    """A non-seekable file object: the streaming save path."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), len(self._data))
        buffer[:n], self._data = self._data[:n], self._data[n:]
        return n


def write_every_way(storage: Storage, dsn: str, tmp_path: Path) -> dict[str, str]:
    """Write one object by each path (write_bytes, save streamed and from a file, open,
    write_many, the CLI's put and sync); return {key: the content type it should have}."""
    storage.write_bytes("write_bytes.png", PNG)
    storage.save("save-stream.jpg", Stream(PNG))
    local = tmp_path / "local.gif"
    local.write_bytes(PNG)
    with local.open("rb") as f:
        storage.save("save-file.gif", f)
    with storage.open("open.txt", "wb") as f:
        f.write(b"text")
    storage.write_many({"many/a.css": b"a{}", "many/b.js": b"1"})
    local.rename(tmp_path / "put.svg")
    assert main(["put", dsn, "put.svg", str(tmp_path / "put.svg")]) == 0
    source = tmp_path / "sync-source"
    (source / "synced").mkdir(parents=True)
    (source / "synced" / "page.html").write_bytes(b"<p>")
    assert main(["sync", str(source), dsn]) == 0
    return {
        "write_bytes.png": "image/png",
        "save-stream.jpg": "image/jpeg",
        "save-file.gif": "image/gif",
        "open.txt": "text/plain",
        "many/a.css": "text/css",
        "many/b.js": "text/javascript",
        "put.svg": "image/svg+xml",
        "synced/page.html": "text/html",
    }
