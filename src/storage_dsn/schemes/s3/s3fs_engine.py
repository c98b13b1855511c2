"""The s3fs engine of ``s3:`` storages (the default): :class:`S3Backend`."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

if TYPE_CHECKING:
    from concurrent.futures import Future

from ...backend import (
    Backend,
    MetadataFix,
    Stat,
    Timeouts,
    file_path,
    guess_type,
    short_read,
)
from ...parts import PARTS_IN_FLIGHT, RangedReader, part_size
from ..generic import FsspecBackend
from .hints import explain, public_read_fix
from .location import credentials, etag_md5, location, same_service, upload_settings
from .metadata import fix as fix_in_place

__all__ = ["S3Backend"]


class S3Backend(FsspecBackend):
    """s3fs with content types set on upload; each PUT is atomic, so is each multipart.

    Whole-object reads are one GET (s3fs would HEAD first to split large objects into
    ranges), and ``exists``/``stat`` are one HEAD (s3fs lists the "directory" too when
    the key is missing): half the round trips where latency is all that matters.
    """

    def secrets_found(self) -> Sequence[str]:
        return [v for v in credentials(self.config, self.environ) or () if v]

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
        # Timeouts and retries are botocore's ("standard" mode retries 5xx, throttling,
        # resets and timeouts with backoff); s3fs's own retry loop is turned off in
        # _make_filesystem, since the two would multiply.
        timeouts = Timeouts.of(self.config)
        config_kwargs = options.setdefault("config_kwargs", {})
        config_kwargs.setdefault("connect_timeout", timeouts.connect)
        config_kwargs.setdefault("read_timeout", timeouts.read)
        # botocore's max_attempts counts the retries after the first attempt (it adds one
        # for total_max_attempts), as the DSN's retries does.
        config_kwargs.setdefault("retries", {"max_attempts": timeouts.retries, "mode": "standard"})
        return options

    def _make_filesystem(self) -> Any:
        fs = super()._make_filesystem()
        fs.retries = 1  # one attempt per s3fs call: botocore retries (see storage_options)
        return fs

    # Whole-object reads are one GET whose body is checked against its length: a body
    # that ends early (a connection closed without Content-Length) would otherwise be
    # returned short, as if it were the whole object.

    def read_bytes(self, key: str) -> bytes:
        from fsspec.asyn import sync

        data: bytes = sync(self.base.loop, self._get, key)
        return data

    def read_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        results = self._gather([self._get(key) for key in keys])
        out: dict[str, bytes] = {}
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            out[key] = result
        return out

    async def _get(self, key: str, part: tuple[int, int, str] | None = None) -> bytes | bytearray:
        """The object, or with ``part=(start, end, etag)`` its bytes ``[start, end)`` as
        long as it is still the object with that ETag (parts of two versions never mix).

        A part is read into one buffer of its length (a ``bytearray``): reading the body
        whole joins its chunks into a second copy, and with four parts in flight those
        copies were 64 MiB more at the peak.
        """
        # asyncio here and below, not at the top: importing it costs milliseconds that a
        # command which never starts an event loop should not pay.
        import asyncio

        fs: Any = self.base
        bucket, path, _ = fs.split_path(self.path(key))
        request: dict[str, str] = {}
        if part is not None:
            request = {"Range": f"bytes={part[0]}-{part[1] - 1}", "IfMatch": part[2]}
        attempts = Timeouts.of(self.config).retries + 1
        failure: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
            try:
                response = await fs._call_s3("get_object", Bucket=bucket, Key=path, **request)
            except FileNotFoundError:
                raise FileNotFoundError(key) from None
            try:
                data: bytes | bytearray
                if part is None:
                    data = await response["Body"].read()
                else:
                    data = await _read_into(response["Body"], part[1] - part[0])
            except Exception as exc:  # the body broke off: a reset, a timeout, a short body
                failure = OSError(errno.EIO, f"reading the body failed: {type(exc).__name__}", key)
                continue
            finally:
                response["Body"].close()
            expected = response.get("ContentLength")
            if expected is None and part is not None:
                expected = part[1] - part[0]
            if expected is None:  # nothing said how long it is: ask
                expected = int(
                    (await fs._call_s3("head_object", Bucket=bucket, Key=path))["ContentLength"]
                )
            if len(data) == expected:
                return data
            failure = short_read(key, int(expected), len(data))
        assert failure is not None
        raise failure

    def open_read(self, key: str) -> BinaryIO:
        # Parallel ranged GETs, PARTS_IN_FLIGHT ahead (s3fs's file object reads one
        # 50 MiB block at a time): memory is the parts in flight, whatever the size.
        import asyncio

        head = self._head(key)
        size, etag = int(head.get("ContentLength", 0)), str(head.get("ETag", ""))
        loop = self.base.loop

        def fetch(start: int, end: int) -> Future[bytes | bytearray]:
            return asyncio.run_coroutine_threadsafe(self._get(key, (start, end, etag)), loop)

        return io.BufferedReader(RangedReader(fetch, size, key), 1024 * 1024)

    def md5(self, key: str, stat: Stat) -> str:
        return etag_md5(stat) or super().md5(key, stat)

    def explain(self, exc: OSError) -> OSError:
        return explain(exc, location(self.config))

    def public_read_fix(self) -> str:
        return public_read_fix(location(self.config), upload_settings(self.config).get("ACL"))

    metadata = True

    def fix_metadata(self, key: str, *, dry_run: bool = False) -> MetadataFix:
        fs: Any = self.base
        bucket, path, _ = fs.split_path(self.path(key))
        upload = upload_settings(self.config)
        try:
            return fix_in_place(fs.call_s3, bucket, path, key, upload, dry_run=dry_run)
        except FileNotFoundError:
            raise FileNotFoundError(key) from None

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
        size = os.path.getsize(local)
        chunk = part_size(size)
        with _create_mode(path, exclusive) as mode:
            if size < 2 * chunk:  # one PUT, as s3fs decides
                self.base.put_file(local, path, mode=mode, **self._upload_kwargs(path))
                return
            from fsspec.asyn import sync

            sync(self.base.loop, self._multipart, local, path, chunk, mode == "create")
            self.base.invalidate_cache(path)

    async def _multipart(self, local: str, path: str, chunk: int, exclusive: bool) -> None:
        """Upload ``local`` in parts of ``chunk`` bytes, PARTS_IN_FLIGHT at a time.

        s3fs sends its parts in batches (four, then the next four once all four are
        done), so the slowest part of each batch idles the others; here the next part
        starts as soon as any one is done. Memory stays the parts in flight (s3fs's
        defaults held ten 50 MiB parts, 1 GB for a 512 MiB file). The object exists only
        once the upload completes (with ``If-None-Match: *`` when ``exclusive``); any
        failure aborts it.
        """
        import asyncio

        fs: Any = self.base
        bucket, key, _ = fs.split_path(path)
        mpu = await fs._call_s3(
            "create_multipart_upload", Bucket=bucket, Key=key, **self._upload_kwargs(path)
        )
        upload_id = mpu["UploadId"]
        window = asyncio.Semaphore(PARTS_IN_FLIGHT)
        tasks: list[asyncio.Task[dict[str, Any]]] = []
        failed: list[BaseException] = []  # the first failed part stops the reading

        async def send(number: int, body: bytes) -> dict[str, Any]:
            try:
                response = await fs._call_s3(
                    "upload_part",
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                )
            except BaseException as exc:
                failed.append(exc)
                raise
            finally:
                window.release()
            return {"PartNumber": number, "ETag": response["ETag"]}

        try:
            with open(local, "rb") as f:
                while True:
                    await window.acquire()
                    if failed:
                        raise failed[0]  # abort below
                    body = f.read(chunk)
                    if not body:
                        window.release()
                        break
                    tasks.append(asyncio.create_task(send(len(tasks) + 1, body)))
            parts = list(await asyncio.gather(*tasks))
            match = {"IfNoneMatch": "*"} if exclusive else {}
            await fs._call_s3(
                "complete_multipart_upload",
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **match,
            )
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with suppress(Exception):  # the upload's own error is the one to report
                await fs._call_s3(
                    "abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id
                )
            raise

    async def _put_bytes_async(self, path: str, data: bytes) -> None:
        fs: Any = self.base
        await fs._pipe_file(path, data, **self._upload_kwargs(path))

    def save(self, key: str, fileobj: BinaryIO, *, exclusive: bool = False) -> None:
        local = file_path(fileobj)
        if local is None:
            super().save(key, fileobj, exclusive=exclusive)
        else:  # no copy; one PUT or a completed upload
            self._put_file(local, self.path(key), exclusive=exclusive)

    def server_copy(self, source: Backend) -> Callable[[str], None] | None:
        """CopyObject (UploadPartCopy above 5 GiB, s3fs's managed copy) between two
        locations of one endpoint and identity, either engine on the source side."""
        # Either engine's backend: asked by protocol, not by class (obstore_engine imports
        # this module, so importing it here would close a circle).
        if source.config.protocol != "s3":
            return None
        if not same_service(self.config, source.config, self.environ, source.environ):
            return None
        root = source.config.root.rstrip("/")
        # A copy keeps the source's metadata (its Content-Type, Cache-Control) unless
        # told to replace it: with this storage's own Cache-Control it is replaced, with
        # the type guessed from the key as on every other write. ACL, storage class and
        # encryption come from s3_additional_kwargs on every request either way.
        replace = "CacheControl" in upload_settings(self.config)

        def copy(key: str) -> None:
            path = self.path(key)
            extra: dict[str, str] = {}
            if replace:
                extra = {"MetadataDirective": "REPLACE", **self._upload_kwargs(path)}
            self._copy_object(f"{root}/{key}" if root else key, path, extra)

        return copy

    def _copy_object(self, source: str, path: str, extra: dict[str, str]) -> None:
        """One CopyObject request; s3fs's managed copy (a HEAD, then UploadPartCopy parts)
        only for what one request cannot copy (over 5 GiB). fsspec's ``copy`` would HEAD
        and expand every single key first: three requests per object instead of one."""
        fs: Any = self.base
        bucket, key, _ = fs.split_path(path)
        source_bucket, source_key, _ = fs.split_path(source)
        try:
            fs.call_s3(
                "copy_object",
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": source_bucket, "Key": source_key},
                **extra,
            )
        except OSError as exc:
            if _error_code(exc) not in ("InvalidRequest", "EntityTooLarge"):
                raise
            fs.cp_file(source, path, **extra)  # one key, never expanded as a folder

    @staticmethod
    def _upload_kwargs(path: str) -> dict[str, str]:
        content_type = guess_type(path)
        return {"ContentType": content_type} if content_type else {}


async def _read_into(body: Any, size: int) -> bytearray:
    """At most ``size`` bytes of a streaming body, in one buffer; fewer if it ends early
    (the caller compares the length), and an error if it holds more."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        chunk = await body.read(min(size - got, 1024 * 1024))
        if not chunk:
            return buffer[:got]
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    if await body.read(1):  # the end, where a checksum would be checked
        raise OSError(errno.EIO, f"the body is longer than the {size} bytes asked for")
    return buffer


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
