"""Large objects in parts: how large a part is, how many are in flight, and a reader that
keeps that many ranged GETs ahead of whoever reads.

A backend's big uploads and downloads are bounded by the same budget, parts in flight x
part size (:data:`PARTS_IN_FLIGHT` x :data:`PART_SIZE`, 64 MiB), whatever the size of the
object: a 512 MiB upload that held ten 50 MiB parts (and botocore's copies of them) used
1 GB of memory, and a download that fetched one part at a time waited for each.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

from .backend import generic_error, short_read

__all__ = ["PARTS_IN_FLIGHT", "PART_SIZE", "Fetch", "RangedReader", "part_size"]

#: Bytes per part of a multipart upload or ranged download (S3 wants at least 5 MiB).
PART_SIZE = 16 * 2**20
#: Parts uploaded or downloaded at once, per object.
PARTS_IN_FLIGHT = 4
# S3 takes at most 10,000 parts per upload: a larger object needs larger parts.
_MAX_PARTS = 10_000

#: Starts fetching bytes ``[start, end)`` of an object; the future holds them (``bytes``,
#: or any object with ``len()`` and the buffer protocol, such as obstore's ``Bytes``).
Fetch = Callable[[int, int], "Future[Any]"]


def part_size(size: int) -> int:
    """The part size for an object of ``size`` bytes: :data:`PART_SIZE`, or larger when
    10,000 parts of it would not hold the object."""
    return max(PART_SIZE, -(-size // _MAX_PARTS))


class RangedReader(io.RawIOBase):
    """A seekable raw file over ranged GETs, up to ``in_flight`` parts ahead of the reader.

    Reading front to back keeps ``in_flight`` requests busy, so a download is as fast as
    the connections together, and memory holds at most ``in_flight + 1`` parts. Each part
    must arrive whole: a shorter one is an :class:`OSError` (``EIO``), never a short
    success. A seek drops the parts ahead and starts again from there.
    """

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        key: str,
        *,
        part: int | None = None,
        in_flight: int = PARTS_IN_FLIGHT,
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self._key = key
        self._part = part or part_size(size)
        self._in_flight = in_flight
        self._pending: deque[tuple[int, int, Future[Any]]] = deque()
        self._next = 0  # where the next part to ask for starts
        self._pos = 0
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size:
            return 0
        if not self._current:
            self._current = memoryview(self._take())
        n = min(len(buffer), len(self._current))
        memoryview(buffer).cast("B")[:n] = self._current[:n]
        self._current = self._current[n:]
        self._pos += n
        return n

    def _take(self) -> Any:
        """The next part, whole, with the parts after it already asked for."""
        self._ask()
        start, end, future = self._pending.popleft()
        self._ask()
        try:
            data: Any = future.result()
        except OSError:
            raise
        except Exception as exc:  # a library's own error (a reset, a changed object)
            raise generic_error(exc, self._key) from exc
        if len(data) != end - start:
            raise short_read(self._key, self._size, start + len(data))
        return data

    def _ask(self) -> None:
        while len(self._pending) < self._in_flight and self._next < self._size:
            end = min(self._next + self._part, self._size)
            self._pending.append((self._next, end, self._fetch(self._next, end)))
            self._next = end

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {
            io.SEEK_SET: offset,
            io.SEEK_CUR: self._pos + offset,
            io.SEEK_END: self._size + offset,
        }[whence]
        if target < 0:
            raise ValueError("negative seek position")
        if target != self._pos:
            self._drop()
            self._pos = self._next = target
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._drop()
        super().close()

    def _drop(self) -> None:
        for _, _, future in self._pending:
            future.cancel()
        self._pending.clear()
        self._current = memoryview(b"")
