"""``memory:`` storages: fsspec's in-process memory filesystem, for tests and demos.

``memory://name/prefix/``: ``name`` keeps storages apart inside one process.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..errors import InvalidDSNError
from .base import Scheme
from .generic import FsspecBackend

if TYPE_CHECKING:
    from ..dsn import DSNParts, StorageConfig

__all__ = ["SCHEMES", "MemoryBackend", "parse_memory"]

_lock = threading.Lock()


def parse_memory(parts: DSNParts) -> StorageConfig:
    """Parse a ``memory:`` DSN."""
    if parts.username is not None or parts.port is not None:
        raise InvalidDSNError("a memory DSN is memory://name/prefix/, with no user or port")
    segments = [s for s in (parts.host, *parts.path.split("/")) if s]
    if not segments:
        raise InvalidDSNError("a memory DSN needs a name: memory://name/prefix/")
    if any(s in (".", "..") for s in segments):
        raise InvalidDSNError("a memory DSN's path must not contain '.' or '..' segments")
    prefix = "/".join(segments[1:])
    return parts.config(
        protocol="memory", root="/" + "/".join(segments), public_url=parts.public_base(prefix)
    )


class MemoryBackend(FsspecBackend):
    """The memory filesystem, with writes stored whole in one step."""

    thread_safe = True  # fsspec's memory store is dicts; writes are locked here

    local = True
    directories = True

    def _put_bytes(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        from fsspec.implementations.memory import MemoryFile

        # MemoryFileSystem.pipe_file publishes the file before writing into it; a
        # MemoryFile built with its data and then committed appears whole.
        with _lock:  # one process holds every memory storage: a lock makes exclusive exact
            self._refuse_existing(path, exclusive)
            MemoryFile(self.base, self.base._strip_protocol(path), data).commit()

    def _put_file(self, local: str, path: str, *, exclusive: bool = False) -> None:
        with open(local, "rb") as f:
            self._put_bytes(path, f.read(), exclusive=exclusive)


SCHEMES = (Scheme(name="memory", parse=parse_memory, backend=MemoryBackend),)
