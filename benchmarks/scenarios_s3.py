"""Scenario: many small S3 objects, PUT then GET, on a moto server in its own process.

storage-dsn's write_many/read_many (obstore and s3fs engines) against s3fs's own pipe/cat,
boto3 in a 16-thread pool and obstore's async API, all talking to the same server (pinned
to core 1; this process to core 0) with 16 to 64 requests in flight. Each round writes and
reads every object under a fresh prefix; client CPU seconds are the whole process's.
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import Report
from .scenarios_sync import KEY, SECRET, client, moto_server


@dataclass
class S3Bench:
    """A moto server with one fresh bucket, and every peer's client for it."""

    endpoint: str
    bucket: str
    #: ``s3+http://KEY:SECRET@host:port/bucket``, percent-encoded, no trailing slash.
    base: str
    boto: Any
    fs: Any
    store: Any


@contextmanager
def s3_bench(name: str, *, store_prefix: str | None = None) -> Iterator[S3Bench]:
    """Pin this process to core 0, start moto on core 1, make a bucket; undo it all after."""
    import s3fs
    from obstore.store import S3Store

    pinned = (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
    if pinned:
        os.sched_setaffinity(0, {0})
    try:
        with moto_server() as endpoint:
            bucket = f"{name}-{uuid.uuid4().hex[:8]}"
            boto = client(endpoint)
            boto.create_bucket(Bucket=bucket)
            fs = s3fs.S3FileSystem(
                key=KEY,
                secret=SECRET,
                endpoint_url=endpoint,
                skip_instance_cache=True,
                client_kwargs={"region_name": "us-east-1"},
                config_kwargs={"s3": {"addressing_style": "path"}},
            )
            store = S3Store(
                bucket,
                prefix=store_prefix,
                endpoint=endpoint,
                region="us-east-1",
                access_key_id=KEY,
                secret_access_key=SECRET,
                virtual_hosted_style_request=False,
                client_options={"allow_http": True},
            )
            quoted = SECRET.replace("/", "%2F").replace("+", "%2B")
            base = f"s3+http://{KEY}:{quoted}@{endpoint.removeprefix('http://')}/{bucket}"
            yield S3Bench(endpoint, bucket, base, boto, fs, store)
    finally:
        if pinned:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def run_s3_small(report: Report, *, quick: bool, rounds: int, kib: int = 4) -> None:
    import obstore

    from storage_dsn import open_storage

    count = 200 if quick else 1000
    size = kib * 1024
    with s3_bench("small") as b:
        bucket, base, fs, boto, store = b.bucket, b.base, b.fs, b.boto, b.store
        data = os.urandom(size)

        def via_storage(engine: str):  # type: ignore[no-untyped-def]
            def run() -> None:
                prefix = uuid.uuid4().hex[:8]
                storage = open_storage(f"{base}/{prefix}/?engine={engine}")
                items = {f"k{i:04}": data for i in range(count)}
                storage.write_many(items)
                got = storage.read_many(list(items))
                assert len(got) == count
                assert all(v == data for v in got.values())

            return run

        def via_s3fs() -> None:
            prefix = f"{bucket}/{uuid.uuid4().hex[:8]}"
            paths = {f"{prefix}/k{i:04}": data for i in range(count)}
            fs.pipe(paths)
            got = fs.cat(list(paths))
            assert len(got) == count

        def via_boto3() -> None:
            prefix = uuid.uuid4().hex[:8]
            keys = [f"{prefix}/k{i:04}" for i in range(count)]
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda k: boto.put_object(Bucket=bucket, Key=k, Body=data), keys))
                got = list(
                    pool.map(lambda k: boto.get_object(Bucket=bucket, Key=k)["Body"].read(), keys)
                )
            assert len(got) == count

        def via_obstore() -> None:
            prefix = uuid.uuid4().hex[:8]
            keys = [f"{prefix}/k{i:04}" for i in range(count)]

            async def go() -> list[bytes]:
                limit = asyncio.Semaphore(64)

                async def put(k: str) -> None:
                    async with limit:
                        await obstore.put_async(store, k, data)

                async def get(k: str) -> bytes:
                    async with limit:
                        return bytes(await (await obstore.get_async(store, k)).bytes_async())

                await asyncio.gather(*(put(k) for k in keys))
                return await asyncio.gather(*(get(k) for k in keys))

            assert len(asyncio.run(go())) == count

        report.compare(
            f"S3: PUT then GET {count} x {kib} KiB (moto server)",
            ("storage-dsn write_many/read_many (engine=obstore)", via_storage("obstore")),
            [
                ("s3fs pipe/cat", via_s3fs),
                ("boto3, 16 threads", via_boto3),
                ("obstore async (64 in flight)", via_obstore),
            ],
            variants=[("storage-dsn write_many/read_many (engine=s3fs)", via_storage("s3fs"))],
            number=1,
            rounds=rounds,
            unit="s",
            metric=f"time for {2 * count} requests",
        )


def run_s3_latency(report: Report, *, quick: bool, rounds: int) -> None:
    """One request at a time: read 1 KiB, exists on a present and on a missing key."""
    import obstore

    from storage_dsn import open_storage

    number = 20 if quick else 100
    with s3_bench("lat", store_prefix="m") as b:
        bucket, fs, boto, store = b.bucket, b.fs, b.boto, b.store
        boto.put_object(Bucket=bucket, Key="m/one.bin", Body=os.urandom(1024))
        base = b.base + "/m/"
        ours = open_storage(base + "?engine=obstore")
        ours_s3fs = open_storage(base)

        def boto_exists(key: str) -> bool:
            try:
                boto.head_object(Bucket=bucket, Key=f"m/{key}")
            except boto.exceptions.ClientError:
                return False
            return True

        def obstore_exists(key: str) -> bool:
            try:
                obstore.head(store, key)
            except FileNotFoundError:
                return False
            return True

        kw = {"number": number, "rounds": rounds, "unit": "ms", "metric": "time per call"}
        report.compare(
            "S3 latency: read 1 KiB",
            ("storage-dsn read_bytes (engine=obstore)", lambda: ours.read_bytes("one.bin")),
            [
                ("s3fs cat_file", lambda: fs.cat_file(f"{bucket}/m/one.bin")),
                (
                    "boto3 get_object",
                    lambda: boto.get_object(Bucket=bucket, Key="m/one.bin")["Body"].read(),
                ),
                ("obstore get", lambda: bytes(obstore.get(store, "one.bin").bytes())),
            ],
            variants=[
                ("storage-dsn read_bytes (engine=s3fs)", lambda: ours_s3fs.read_bytes("one.bin"))
            ],
            **kw,  # type: ignore[arg-type]
        )
        for label, key in (("present", "one.bin"), ("missing", "nope.bin")):
            report.compare(
                f"S3 latency: exists, {label} key",
                ("storage-dsn exists (engine=obstore)", lambda key=key: ours.exists(key)),
                [
                    ("s3fs isfile", lambda key=key: fs.isfile(f"{bucket}/m/{key}")),
                    ("boto3 head_object", lambda key=key: boto_exists(key)),
                    ("obstore head", lambda key=key: obstore_exists(key)),
                ],
                variants=[
                    ("storage-dsn exists (engine=s3fs)", lambda key=key: ours_s3fs.exists(key))
                ],
                **kw,  # type: ignore[arg-type]
            )


class _Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return len(b)


def run_s3_large(report: Report, *, quick: bool, rounds: int) -> None:
    """One large object (256 MiB; 32 MiB with --quick): upload from a file, download whole."""
    import subprocess
    import tempfile

    import obstore

    from storage_dsn import open_storage

    size = (32 if quick else 256) * 1024 * 1024
    with s3_bench("large") as b:
        bucket, fs, boto, store = b.bucket, b.fs, b.boto, b.store
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp, "big.bin")
            with open(source, "wb") as f:
                for _ in range(size // (8 * 2**20)):
                    f.write(os.urandom(8 * 2**20))
            base = b.base + "/"
            ours = open_storage(base + "ours/?engine=obstore")
            ours_s3fs = open_storage(base + "ours-s3fs/")

            def save(storage: Any) -> Callable[[], None]:
                def run() -> None:
                    with open(source, "rb") as f:
                        storage.save("big.bin", f)

                return run

            def curl_put() -> None:
                url = boto.generate_presigned_url(
                    "put_object", Params={"Bucket": bucket, "Key": "curl/big.bin"}, ExpiresIn=600
                )
                subprocess.run(
                    ["curl", "-sf", "-T", str(source), url, "-o", "/dev/null"], check=True
                )

            mib = size // 2**20
            report.compare(
                f"S3: upload one {mib} MiB file",
                ("storage-dsn save (engine=obstore)", save(ours)),
                [
                    ("s3fs put_file", lambda: fs.put_file(str(source), f"{bucket}/s3fs/big.bin")),
                    (
                        "boto3 upload_file",
                        lambda: boto.upload_file(str(source), bucket, "boto/big.bin"),
                    ),
                    ("obstore put", lambda: obstore.put(store, "obstore/big.bin", source)),
                    ("curl -T, presigned (floor)", curl_put),
                ],
                variants=[("storage-dsn save (engine=s3fs)", save(ours_s3fs))],
                number=1,
                rounds=rounds,
                unit="s",
                metric="time per file",
            )

            def read(storage: Any) -> Callable[[], None]:
                def run() -> None:
                    with storage.open("big.bin", "rb") as f:
                        while f.read(2**20):
                            pass

                return run

            def obstore_get() -> None:
                for _ in obstore.get(store, "obstore/big.bin").stream(min_chunk_size=2**20):
                    pass

            def curl_get() -> None:
                url = boto.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": "curl/big.bin"}, ExpiresIn=600
                )
                subprocess.run(["curl", "-sf", url, "-o", "/dev/null"], check=True)

            report.compare(
                f"S3: download one {mib} MiB file",
                ("storage-dsn open('rb') (engine=obstore)", read(ours)),
                [
                    ("s3fs open('rb')", lambda: _drain(fs.open(f"{bucket}/s3fs/big.bin", "rb"))),
                    (
                        "boto3 download_fileobj",
                        lambda: boto.download_fileobj(bucket, "boto/big.bin", _Null()),
                    ),
                    ("obstore get stream", obstore_get),
                    ("curl, presigned (floor)", curl_get),
                ],
                variants=[("storage-dsn open('rb') (engine=s3fs)", read(ours_s3fs))],
                number=1,
                rounds=rounds,
                unit="s",
                metric="time per file",
            )


def _drain(f: Any) -> None:
    with f:
        while f.read(2**20):
            pass
