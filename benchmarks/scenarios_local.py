"""Scenarios: local files, small (1,000 x 4 KiB) and large (256 MiB), read and write.

storage-dsn's Storage (atomic writes: a temporary file renamed into place; every path
checked to stay in the root) against plain ``open()``, ``pathlib`` and fsspec's local
filesystem. Each round of the small scenarios is 1,000 operations.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .harness import Report

SMALL, COUNT = 4 * 1024, 1000
LARGE, CHUNK = 256 * 1024 * 1024, 1024 * 1024


def run_local(report: Report, *, quick: bool, rounds: int) -> None:
    import fsspec

    from storage_dsn import open_storage

    large = LARGE // 16 if quick else LARGE
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("ours", "open", "pathlib", "fsspec"):
            (root / name / "d").mkdir(parents=True)
        storage = open_storage(f"file://{root}/ours/")
        fs = fsspec.filesystem("file")
        data = os.urandom(SMALL)
        keys = [f"d/{i:04}.bin" for i in range(COUNT)]

        def ours_write() -> None:
            for key in keys:
                storage.write_bytes(key, data)

        def open_write() -> None:
            for key in keys:
                with open(root / "open" / key, "wb") as f:
                    f.write(data)

        def pathlib_write() -> None:
            for key in keys:
                (root / "pathlib" / key).write_bytes(data)

        def fsspec_write() -> None:
            for key in keys:
                fs.pipe_file(f"{root}/fsspec/{key}", data)

        kw = {"number": 1, "rounds": rounds, "unit": "ms", "metric": "time per 1,000 files"}
        report.compare(
            "local: write 1,000 x 4 KiB",
            ("storage-dsn write_bytes (atomic)", ours_write),
            [
                ("open() write", open_write),
                ("pathlib write_bytes", pathlib_write),
                ("fsspec pipe_file", fsspec_write),
            ],
            **kw,  # type: ignore[arg-type]
        )

        def ours_read() -> None:
            for key in keys:
                storage.read_bytes(key)

        def open_read() -> None:
            for key in keys:
                with open(root / "open" / key, "rb") as f:
                    f.read()

        def pathlib_read() -> None:
            for key in keys:
                (root / "pathlib" / key).read_bytes()

        def fsspec_read() -> None:
            for key in keys:
                fs.cat_file(f"{root}/fsspec/{key}")

        report.compare(
            "local: read 1,000 x 4 KiB",
            ("storage-dsn read_bytes", ours_read),
            [
                ("open() read", open_read),
                ("pathlib read_bytes", pathlib_read),
                ("fsspec cat_file", fsspec_read),
            ],
            **kw,  # type: ignore[arg-type]
        )

        chunk = os.urandom(CHUNK)
        chunks = large // CHUNK

        def ours_large_write() -> None:
            with storage.open("big.bin", "wb") as f:
                for _ in range(chunks):
                    f.write(chunk)

        def open_large_write() -> None:
            with open(root / "open" / "big.bin", "wb") as f:
                for _ in range(chunks):
                    f.write(chunk)

        def fsspec_large_write() -> None:
            with fs.open(f"{root}/fsspec/big.bin", "wb") as f:
                for _ in range(chunks):
                    f.write(chunk)

        size = f"{large // 2**20} MiB"
        kw = {"number": 1, "rounds": rounds, "unit": "ms", "metric": "time per file"}
        report.compare(
            f"local: write {size} in 1 MiB chunks",
            ("storage-dsn open('wb') (atomic)", ours_large_write),
            [("open() write", open_large_write), ("fsspec open('wb')", fsspec_large_write)],
            setup=os.sync,  # each starts with no dirty pages: 256 MiB of the last one's
            **kw,  # type: ignore[arg-type]
        )

        def reader(opener):  # type: ignore[no-untyped-def]
            def read() -> None:
                with opener() as f:
                    while f.read(CHUNK):
                        pass

            return read

        report.compare(
            f"local: read {size} in 1 MiB chunks",
            ("storage-dsn open('rb')", reader(lambda: storage.open("big.bin", "rb"))),
            [
                ("open() read", reader(lambda: open(root / "open" / "big.bin", "rb"))),  # noqa: SIM115
                ("fsspec open('rb')", reader(lambda: fs.open(f"{root}/fsspec/big.bin", "rb"))),
            ],
            **kw,  # type: ignore[arg-type]
        )
