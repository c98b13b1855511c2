"""gcsfs's errors as the OSErrors a storage raises: one line, naming the key, no secret.

gcsfs raises ``HttpError`` (not an OSError) for most HTTP statuses, and builds its
filesystem by loading credentials, where some failures carry the token in their text
(requests puts ``?access_token=...`` URLs in its messages). :func:`oserror` keeps the
status and the server's message, masks every secret the storage holds, and keeps nothing
of a credentials error but its class name.
"""

from __future__ import annotations

import errno
import io
from collections.abc import Callable, Sequence
from typing import Any

from ...redaction import scrub

__all__ = ["Reader", "oserror"]


def _one_line(text: str, secrets: Sequence[str]) -> str:
    text = scrub(text, secrets)  # in each encoding: quoted, quote_plus, JSON-escaped, ...
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""


def _http_status(exc: BaseException) -> tuple[int, str] | None:
    """The HTTP status and server message behind a gcsfs error, if it is one.

    gcsfs raises ``HttpError`` (not an OSError) for most statuses, ``OSError("Forbidden:
    URL\\nmessage")`` for 403 and ``ValueError("Bad Request: URL\\nmessage")`` for a 400
    that says "invalid"; the URL is left out here.
    """
    code = getattr(exc, "code", None)
    if type(exc).__name__ == "HttpError" and isinstance(code, int):
        message = str(getattr(exc, "message", "")).removesuffix(f", {code}")
        return code, message
    text = str(exc)
    if type(exc) is OSError and text.startswith("Forbidden: "):
        return 403, text.partition("\n")[2] or "Forbidden"
    if isinstance(exc, ValueError) and text.startswith("Bad Request: "):
        return 400, text.partition("\n")[2] or "Bad Request"
    return None


def _is_credentials_error(exc: BaseException) -> bool:
    """Raised while getting credentials: google-auth's errors, and requests' (gcsfs talks
    to Google's token endpoints through requests and to storage through aiohttp). Their
    text can hold a token (requests puts ``?access_token=...`` URLs in its messages)."""
    for cls in type(exc).__mro__:
        top = cls.__module__.partition(".")[0]
        if top == "requests" or cls.__module__.startswith("google.auth"):
            return True
    return type(exc).__name__ == "NonRetryableError"


def _builtin_class(exc: OSError) -> type[OSError]:
    """The most specific built-in OSError class of ``exc`` (ConnectionError, ...)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "builtins" and issubclass(cls, OSError):
            return cls
    return OSError


def oserror(key: str, exc: BaseException, secrets: Sequence[str]) -> OSError:
    """``exc`` from gcsfs or google-auth as the OSError it is, naming ``key``: one line,
    secrets masked, and nothing at all from a credentials error's text."""
    import asyncio  # loaded already by gcsfs; not at the top, where every command pays

    if isinstance(exc, FileNotFoundError):
        return FileNotFoundError(errno.ENOENT, "not found (no such object, or no such bucket)", key)
    if isinstance(exc, FileExistsError):
        return FileExistsError(errno.EEXIST, "the object exists", key)
    status = _http_status(exc)
    if status is not None:
        code, message = status
        summary = _one_line(f"HTTP {code} {message}", secrets)
        if code in (401, 403):
            return PermissionError(errno.EACCES, summary, key)
        if code in (408, 504):
            return TimeoutError(errno.ETIMEDOUT, summary, key)
        return OSError(errno.EIO, summary, key)
    if _is_credentials_error(exc):
        return PermissionError(
            errno.EACCES, f"could not get Google credentials ({type(exc).__name__})", key
        )
    if isinstance(exc, asyncio.TimeoutError):  # fsspec's FSTimeoutError, aiohttp's
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        said = _one_line(str(cause) or type(cause).__name__, secrets)
        text = f"GCS did not answer in time (connect_timeout, read_timeout): {said}"
        return TimeoutError(errno.ETIMEDOUT, text, key)
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        return _builtin_class(exc)(exc.errno or errno.EIO, _one_line(text, secrets), key)
    text = _one_line(f"{type(exc).__name__}: {exc}", secrets)
    return OSError(errno.EIO, text, key)


class Reader(io.RawIOBase):
    """A gcsfs file opened for reading, with its errors translated as the backend's."""

    def __init__(self, f: Any, guard: Callable[..., Any]) -> None:
        super().__init__()
        self._f = f
        self._guard = guard

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = self._guard(self._f.read, -1 if size is None else size)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position: int = self._f.seek(offset, whence)
        return position

    def tell(self) -> int:
        position: int = self._f.tell()
        return position

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()
