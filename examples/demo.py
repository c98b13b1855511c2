"""Demo: open the embedded default storage and show what storage-dsn does with it.

Run with ``nox -s demo`` (or ``python examples/demo.py [DSN]``). Without an argument it uses
``DEFAULT_STORAGE_DSN`` when set, else ``file:./data/media/?url=/media/``.
"""

from __future__ import annotations

import sys

from storage_dsn import open_storage

DEFAULT = "file:./data/media/?url=/media/"


def main(argv: list[str]) -> int:
    storage = open_storage(argv[0] if argv else None, default=DEFAULT)
    print(f"storage:   {storage.config}")
    print(f"backend:   {storage.config.protocol} rooted at {storage.config.root}")
    storage.write_bytes("demo/hello.txt", b"Hello from storage-dsn!\n")
    with storage.open("demo/notes/today.txt", "w") as f:
        f.write("Written atomically: readers see all of it or none of it.\n")
    for key in storage.list("demo/"):
        st = storage.stat(key)
        try:
            url = storage.url(key)
        except ValueError as exc:
            url = f"(no public URL: {exc})"
        print(f"stored:    {key}  {st.size} bytes  {st.content_type}  -> {url}")
    print(f"read back: {storage.read_bytes('demo/hello.txt').decode().strip()}")
    path = storage.local_path("demo/hello.txt")
    if path is not None:
        print(f"on disk:   {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
