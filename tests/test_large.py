"""Large objects on a real S3 server (SeaweedFS), both engines: parts in flight, memory
bounded by them, every part checked, a corrupted body refused (storage_dsn.parts)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from storage_dsn import Storage, open_storage
from storage_dsn.parts import PART_SIZE, PARTS_IN_FLIGHT, RangedReader, part_size
from tests.servers.faults import FaultProxy
from tests.servers.moto import KEY_ID, QUOTED_SECRET
from tests.servers.seaweedfs import SeaweedFS

ENGINES = ["s3fs", "obstore"]
MiB = 2**20
#: What a transfer may hold at once: parts in flight x part size.
BUDGET = PARTS_IN_FLIGHT * PART_SIZE


def _dsn(server: SeaweedFS, engine: str, host: str | None = None) -> str:
    place = server.new_prefix()
    return f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{host or server.host}/{place}/big/?engine={engine}"


def _big_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MiB))
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _read_hash(storage: Storage, key: str) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with storage.open(key, "rb") as f:
        while chunk := f.read(3 * MiB + 17):  # not a multiple of anything
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class TestRoundTrip:
    @pytest.mark.parametrize("engine", ENGINES)
    def test_a_large_object_goes_up_and_comes_back_equal(
        self, seaweedfs: SeaweedFS, tmp_path: Path, engine: str
    ) -> None:
        """A 96 MiB file (multipart up, parallel ranged GETs down) round-trips byte for byte."""
        size = 96 * MiB + 12345
        expected = _big_file(tmp_path / "big.bin", size)
        storage = open_storage(_dsn(seaweedfs, engine))
        with (tmp_path / "big.bin").open("rb") as f:
            storage.save("video.bin", f)
        assert storage.stat("video.bin").size == size
        assert _read_hash(storage, "video.bin") == (size, expected)

    @pytest.mark.parametrize("engine", ENGINES)
    def test_a_seek_into_a_large_object_reads_from_there(
        self, seaweedfs: SeaweedFS, engine: str
    ) -> None:
        """Seeking past the parts in flight drops them and reads the right bytes."""
        data = os.urandom(40 * MiB)
        storage = open_storage(_dsn(seaweedfs, engine))
        storage.write_bytes("blob.bin", data)
        with storage.open("blob.bin", "rb") as f:
            assert f.read(10) == data[:10]
            f.seek(33 * MiB + 5)
            assert f.read(MiB) == data[33 * MiB + 5 : 34 * MiB + 5]
            f.seek(-100, io.SEEK_END)
            assert f.read() == data[-100:]

    @pytest.mark.parametrize("kind", ["s3-server", "s3-obstore"])
    def test_ranged_reads_on_moto(self, storage_factory: Callable[..., Storage], kind: str) -> None:
        """The ranged reader's requests (Range with If-Match) suit moto too."""
        data = os.urandom(PART_SIZE + 3 * MiB)
        storage = storage_factory(kind)
        storage.write_bytes("blob.bin", data)
        with storage.open("blob.bin", "rb") as f:
            assert f.read() == data


_MEASURE = """
import json, os, resource, sys
from storage_dsn import open_storage
storage = open_storage(sys.argv[1])
storage.exists("warm-up")  # the client and its connections, before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[2] == "put":
    with open(sys.argv[3], "rb") as f:
        storage.save("big.bin", f)
else:
    with storage.open("big.bin", "rb") as f:
        while f.read(1024 * 1024):
            pass
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth": (after - before) * 1024}))
"""


def _peak_growth(dsn: str, what: str, path: Path) -> int:
    """Bytes the peak RSS of a fresh process grew by while it did ``what``."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, dsn, what, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    growth: int = json.loads(done.stdout.strip().splitlines()[-1])["growth"]
    return growth


class TestMemory:
    """Peak memory of a 130 MiB transfer, in a fresh process: bounded by the parts in flight
    (the budget is 64 MiB; s3fs's defaults held ten 50 MiB parts, and copies of them)."""

    @pytest.fixture
    def big(self, tmp_path: Path) -> Path:
        path = tmp_path / "big.bin"
        _big_file(path, 130 * MiB)
        return path

    @pytest.mark.parametrize("engine", ENGINES)
    def test_upload_memory_is_bounded_by_the_parts_in_flight(
        self, seaweedfs: SeaweedFS, big: Path, engine: str
    ) -> None:
        """Uploading 130 MiB grows the peak RSS by less than twice the budget."""
        growth = _peak_growth(_dsn(seaweedfs, engine), "put", big)
        assert growth < 2 * BUDGET, f"{growth / MiB:.0f} MiB"

    @pytest.mark.parametrize("engine", ENGINES)
    def test_download_memory_is_bounded_by_the_parts_in_flight(
        self, seaweedfs: SeaweedFS, big: Path, engine: str
    ) -> None:
        """Reading 130 MiB through open() grows the peak RSS by less than twice the budget."""
        dsn = _dsn(seaweedfs, engine)
        with big.open("rb") as f:
            open_storage(dsn).save("big.bin", f)
        growth = _peak_growth(dsn, "cat", big)
        assert growth < 2 * BUDGET, f"{growth / MiB:.0f} MiB"


@pytest.fixture
def corrupting_proxy(seaweedfs: SeaweedFS) -> Iterator[FaultProxy]:
    """The fault proxy in front of SeaweedFS."""
    proxy = FaultProxy(seaweedfs.endpoint)
    yield proxy
    proxy.close()


class TestIntegrity:
    @pytest.mark.parametrize("engine", ENGINES)
    def test_a_body_corrupted_on_the_way_is_never_stored(
        self, seaweedfs: SeaweedFS, corrupting_proxy: FaultProxy, engine: str
    ) -> None:
        """A PUT whose body changed on the way is refused by the server (the engine's
        checksum), so the object is either stored as written or not at all."""
        storage = open_storage(_dsn(seaweedfs, engine, host=corrupting_proxy.host) + "&retries=0")
        rule = corrupting_proxy.inject("corrupt", method="PUT")
        data = os.urandom(MiB)
        with contextlib.suppress(OSError):
            storage.write_bytes("doc.bin", data)
        assert rule.hits == 1
        if storage.exists("doc.bin"):
            assert storage.read_bytes("doc.bin") == data


def _parts(data: bytes, short_at: int | None = None) -> Callable[[int, int], Future[bytes]]:
    """A fetch over ``data``; the part that starts at ``short_at`` comes back short."""

    def fetch(start: int, end: int) -> Future[bytes]:
        future: Future[bytes] = Future()
        future.set_result(data[start : end - 1] if start == short_at else data[start:end])
        return future

    return fetch


def _read_all(reader: RangedReader) -> None:
    while reader.read(50):
        pass


class TestRangedReader:
    def test_reads_the_parts_in_order(self) -> None:
        """Parts come back in order whatever the read size."""
        data = os.urandom(1000)
        reader = io.BufferedReader(RangedReader(_parts(data), len(data), "k", part=64), 100)
        assert reader.read() == data

    def test_a_short_part_is_an_error(self) -> None:
        """A part shorter than asked for is an OSError, never a short success."""
        data = os.urandom(1000)
        reader = RangedReader(_parts(data, short_at=128), len(data), "k", part=64)
        with pytest.raises(OSError, match="short read"):
            _read_all(reader)

    def test_keeps_at_most_in_flight_parts_asked_for(self) -> None:
        """No more than ``in_flight`` parts are asked for ahead of the reader."""
        asked: list[int] = []
        data = os.urandom(1000)
        inner = _parts(data)

        def fetch(start: int, end: int) -> Future[bytes]:
            asked.append(start)
            return inner(start, end)

        reader = RangedReader(fetch, len(data), "k", part=100, in_flight=3)
        reader.read(10)
        assert asked == [0, 100, 200, 300]  # the part being read, and three ahead

    def test_part_size_grows_for_huge_objects(self) -> None:
        """10,000 parts always hold the object."""
        assert part_size(MiB) == PART_SIZE
        assert part_size(5 * 2**40) * 10_000 >= 5 * 2**40


class _FakeS3:
    """Answers the multipart calls of ``S3Backend._multipart`` and records them. Part 1
    is held until part ``PARTS_IN_FLIGHT + 2`` has started: only a sliding window gets
    there (s3fs's batches would wait for part 1 before starting part 5)."""

    def __init__(self, fail_part: int | None = None) -> None:
        import asyncio

        self.calls: list[str] = []
        self.parts: dict[int, bytes] = {}
        self.in_flight = self.most_in_flight = 0
        self.fail_part = fail_part
        self.later_part_started = asyncio.Event()

    def split_path(self, path: str) -> tuple[str, str, None]:
        bucket, _, key = path.partition("/")
        return bucket, key, None

    async def _call_s3(self, method: str, **kwargs: object) -> dict[str, object]:
        import asyncio

        self.calls.append(method)
        if method != "upload_part":
            return {"UploadId": "u1"}
        number = int(kwargs["PartNumber"])  # type: ignore[call-overload]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if number == PARTS_IN_FLIGHT + 2:
                self.later_part_started.set()
            if number == 1:
                await asyncio.wait_for(self.later_part_started.wait(), 10)
            else:
                await asyncio.sleep(0.001 * number)
            if number == self.fail_part:
                raise OSError(f"part {number} refused")
            self.parts[number] = bytes(kwargs["Body"])  # type: ignore[arg-type]
            return {"ETag": f'"e{number}"'}
        finally:
            self.in_flight -= 1


class TestMultipartWindow:
    """The s3fs engine's multipart upload: the next part starts when any part is done."""

    def _upload(self, tmp_path: Path, fake: _FakeS3, parts: int) -> bytes:
        import asyncio

        from storage_dsn import parse_dsn
        from storage_dsn.schemes.s3.s3fs_engine import S3Backend

        data = os.urandom(parts * 1024 - 100)
        local = tmp_path / "big.bin"
        local.write_bytes(data)
        s3 = S3Backend(parse_dsn(f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.amazonaws.com/"))
        s3._base = fake  # what the requests go to; no connection is made
        asyncio.run(s3._multipart(str(local), "bucket/big.bin", 1024, exclusive=False))
        return data

    def test_parts_slide_and_stay_within_the_window(self, tmp_path: Path) -> None:
        fake = _FakeS3()
        data = self._upload(tmp_path, fake, parts=PARTS_IN_FLIGHT * 3)
        assert fake.later_part_started.is_set()
        assert fake.most_in_flight == PARTS_IN_FLIGHT
        assert b"".join(fake.parts[n] for n in sorted(fake.parts)) == data
        assert fake.calls[0] == "create_multipart_upload"
        assert fake.calls[-1] == "complete_multipart_upload"

    def test_a_failed_part_aborts_the_upload(self, tmp_path: Path) -> None:
        fake = _FakeS3(fail_part=3)
        with pytest.raises(OSError, match="part 3 refused"):
            self._upload(tmp_path, fake, parts=PARTS_IN_FLIGHT * 3)
        assert "complete_multipart_upload" not in fake.calls
        assert fake.calls[-1] == "abort_multipart_upload"
        assert fake.calls.count("upload_part") < PARTS_IN_FLIGHT * 3  # stopped reading


class _Body:
    """A streaming body that hands out at most ``step`` bytes per read."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self.data, self.step = data, step

    async def read(self, n: int = -1) -> bytes:
        n = min(n, self.step) if n >= 0 else len(self.data)
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk


class TestReadInto:
    """The s3fs engine reads a part into one buffer of the part's length."""

    def _read(self, data: bytes, size: int) -> bytearray:
        import asyncio

        from storage_dsn.schemes.s3.s3fs_engine import _read_into

        return asyncio.run(_read_into(_Body(data), size))

    def test_the_part_whole(self) -> None:
        data = os.urandom(100)
        assert self._read(data, 100) == data

    def test_a_body_that_ends_early_comes_back_short(self) -> None:
        assert self._read(b"x" * 40, 100) == b"x" * 40  # the caller reports the short read

    def test_a_body_longer_than_asked_is_an_error(self) -> None:
        with pytest.raises(OSError, match="longer than the 100 bytes"):
            self._read(b"x" * 101, 100)
