"""The s3fs engine of ``s3:`` storages (the default): :class:`S3Backend`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, BinaryIO, Literal

from ...backend import Stat, file_path, guess_type
from ..generic import FsspecBackend
from .location import credentials

__all__ = ["S3Backend", "etag_md5"]

# An ETag that is a plain MD5: a single-part upload without SSE-KMS or SSE-C.
_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")


class S3Backend(FsspecBackend):
    """s3fs with content types set on upload; each PUT is atomic, so is each multipart.

    Whole-object reads are one GET (s3fs would HEAD first to split large objects into
    ranges), and ``exists``/``stat`` are one HEAD (s3fs lists the "directory" too when
    the key is missing): half the round trips where latency is all that matters.
    """

    _cat_kwargs = MappingProxyType({"max_concurrency": 1})

    def storage_options(self) -> dict[str, Any]:
        options = super().storage_options()
        found = (
            None
            if "key" in options or options.get("anon")
            else credentials(self.config, self.environ)
        )
        if found is not None:  # from the environment the storage was opened with
            options["key"], options["secret"] = found[0], found[1]
            if found[2]:
                options["token"] = found[2]
        return options

    def md5(self, key: str, stat: Stat) -> str:
        return etag_md5(stat) or super().md5(key, stat)

    def _head(self, key: str) -> dict[str, Any]:
        fs: Any = self.base
        bucket, path, _ = fs.split_path(self.path(key))
        try:
            head: dict[str, Any] = fs.call_s3("head_object", Bucket=bucket, Key=path)
        except FileNotFoundError:
            raise FileNotFoundError(key) from None
        return head

    def stat(self, key: str) -> Stat:
        head = self._head(key)
        return self._stat_from_info(key, {**head, "size": head.get("ContentLength", 0)})

    # ``exclusive`` is S3's conditional write (If-None-Match: *), on the PUT or on the
    # completion of a multipart upload: the object is created only if there is none.

    def _put_bytes(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        with _create_mode(path, exclusive) as mode:
            self.base.pipe_file(path, data, mode=mode, **self._upload_kwargs(path))

    def _put_file(self, local: str, path: str, *, exclusive: bool = False) -> None:
        with _create_mode(path, exclusive) as mode:
            self.base.put_file(local, path, mode=mode, **self._upload_kwargs(path))

    async def _put_bytes_async(self, path: str, data: bytes) -> None:
        fs: Any = self.base
        await fs._pipe_file(path, data, **self._upload_kwargs(path))

    def save(self, key: str, fileobj: BinaryIO, *, exclusive: bool = False) -> None:
        local = file_path(fileobj)
        if local is None:
            super().save(key, fileobj, exclusive=exclusive)
        else:  # no copy; one PUT or a completed upload
            self._put_file(local, self.path(key), exclusive=exclusive)

    @staticmethod
    def _upload_kwargs(path: str) -> dict[str, str]:
        content_type = guess_type(path)
        return {"ContentType": content_type} if content_type else {}


def etag_md5(stat: Stat) -> str | None:
    """The object's MD5 when its ETag is one (a single-part upload without SSE-KMS)."""
    return stat.etag if stat.etag and _PLAIN_MD5.match(stat.etag) else None


@contextmanager
def _create_mode(path: str, exclusive: bool) -> Iterator[Literal["create", "overwrite"]]:
    """s3fs's put mode; a refused conditional create becomes FileExistsError.

    s3fs recognises S3's refusal by the ``<Condition>`` element of the 412 body; servers
    that leave it out (SeaweedFS) reach us as ``OSError(EINVAL)``. The S3 error code is the
    same everywhere: decide by it.
    """
    if not exclusive:
        yield "overwrite"
        return
    try:
        yield "create"
    except FileExistsError:
        raise
    except OSError as exc:
        if _error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise FileExistsError(path) from None
        raise


def _error_code(exc: BaseException) -> str | None:
    """The S3 error code behind an exception s3fs translated, if any."""
    cause = exc.__cause__ or exc.__context__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None
