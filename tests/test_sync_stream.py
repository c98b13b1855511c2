"""The streaming sync: merged listings, requests in flight, shards, server-side copies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage_dsn import Storage, open_storage
from storage_dsn.backend import Stat
from storage_dsn.cli import main
from storage_dsn.sync import ListingError, changes, in_shard, parse_shard, plan_sync, sync
from tests.test_uploads import head


def _tree(n: int, size: int = 10) -> dict[str, bytes]:
    return {f"d{i % 7}/k{i:05d}.bin": bytes([i % 251]) * size for i in range(n)}


def _fill(storage: Storage, tree: dict[str, bytes]) -> None:
    storage.write_many(tree)


def _local(tmp_path: Path, name: str) -> Storage:
    return open_storage(f"file://{tmp_path}/{name}/")


class _Watched:
    """Wraps a storage's listing: counts what it has yielded, and lets a test act at each
    step (the merged stream must not read ahead of the copies by more than a bound)."""

    def __init__(self, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.yielded = 0
        self.hook: Any = None
        original = storage.backend.scan

        def scan(prefix: str) -> Iterator[tuple[str, Stat]]:
            for item in original(prefix):
                if self.hook is not None:
                    self.hook(self.yielded, item[0])
                self.yielded += 1
                yield item

        monkeypatch.setattr(storage.backend, "scan", scan)


def test_first_copy_lands_before_the_listing_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first object is stored while the source is still being listed: the listing
    waits (up to 30 s) for it after 50 keys, which would never end if sync planned whole."""
    src, dst = _local(tmp_path, "src"), _local(tmp_path, "dst")
    tree = _tree(200)
    _fill(src, tree)
    first = min(tree)
    watched = _Watched(src, monkeypatch)
    seen: list[bool] = []

    def hook(n: int, key: str) -> None:
        if n == 50:
            deadline = time.monotonic() + 30
            while not dst.exists(first) and time.monotonic() < deadline:
                time.sleep(0.01)
            seen.append(dst.exists(first))

    watched.hook = hook
    result = sync(src, dst, jobs=4)
    assert seen == [True]
    assert result.ok
    assert result.copied == len(tree)
    assert result.first_copy is not None
    assert result.first_copy <= result.seconds


def test_listing_is_read_no_further_ahead_than_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory is bounded by the requests in flight, not the tree: when the listing
    yields its n-th key, at least n - jobs - 1 copies have finished."""
    src, dst = _local(tmp_path, "src"), _local(tmp_path, "dst")
    tree = _tree(300)
    _fill(src, tree)
    jobs = 3
    done = [0]
    lock = threading.Lock()
    original = dst.backend.write_bytes

    def write_bytes(key: str, data: bytes) -> None:
        original(key, data)
        with lock:
            done[0] += 1

    monkeypatch.setattr(dst.backend, "write_bytes", write_bytes)
    ahead: list[int] = []
    watched = _Watched(src, monkeypatch)
    watched.hook = lambda n, key: ahead.append(n - done[0])
    assert sync(src, dst, jobs=jobs).copied == len(tree)
    assert max(ahead) <= jobs + 1


@pytest.mark.parametrize("jobs", [1, 4, 9])
def test_jobs_is_the_number_of_requests_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """With writes that take a while, exactly ``jobs`` of them run at once, never more."""
    src, dst = _local(tmp_path, "src"), _local(tmp_path, "dst")
    _fill(src, _tree(30))
    peak = _peak_writes(dst, monkeypatch, 0.05)
    assert sync(src, dst, jobs=jobs).copied == 30
    assert peak[0] == jobs


def _peak_writes(storage: Storage, monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[int]:
    """Make each of ``storage``'s writes take ``seconds``; the returned list's one item is
    the most writes seen running at once."""
    running = [0]
    peak = [0]
    lock = threading.Lock()
    original = storage.backend.write_bytes

    def write_bytes(key: str, data: bytes) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(seconds)
        original(key, data)
        with lock:
            running[0] -= 1

    monkeypatch.setattr(storage.backend, "write_bytes", write_bytes)
    return peak


def test_a_broken_listing_copies_what_it_saw_and_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst = _local(tmp_path, "src"), _local(tmp_path, "dst")
    tree = _tree(40)
    _fill(src, tree)
    dst.write_bytes("zz-extra.txt", b"only at the destination")

    def hook(n: int, key: str) -> None:
        if n == 20:
            raise ConnectionResetError(104, "Connection reset by peer")

    _Watched(src, monkeypatch).hook = hook
    result = sync(src, dst, delete=True)
    assert not result.ok
    assert result.errors
    assert "listing the source: " in result.errors[0]
    assert "ConnectionResetError" in result.errors[0]
    # 20 keys were listed; a file system destination reads one ahead (is it a folder?).
    assert result.copied in (19, 20)
    assert result.deleted == 0
    assert dst.exists("zz-extra.txt")
    plan = plan_sync(src, dst, delete=True)
    assert plan.errors
    assert plan.delete == []


def test_an_unordered_listing_is_refused_before_any_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge relies on key order: a listing out of order would read as missing
    objects, so it stops the comparison instead of deleting what it did not see."""
    src, dst = _local(tmp_path, "src"), _local(tmp_path, "dst")
    _fill(src, {"a": b"1", "b": b"2"})
    _fill(dst, {"a": b"1", "b": b"2", "c": b"3"})
    stat = Stat(1, 0.0, None, None)
    monkeypatch.setattr(src.backend, "scan", lambda prefix: iter([("b", stat), ("a", stat)]))
    with pytest.raises(ListingError, match="not in key order"):
        list(changes(src, dst, delete=True))
    result = sync(src, dst, delete=True)
    assert result.errors
    assert result.deleted == 0
    assert dst.exists("c")


def test_deletes_wait_for_the_copies(tmp_path: Path) -> None:
    """A failed copy keeps the destination's extra objects for the next run."""
    src, dst = _local(tmp_path, "src"), _local(tmp_path, "dst")
    _fill(src, {"a.txt": b"a", "b.txt": b"b"})
    dst.write_bytes("old.txt", b"old")
    (tmp_path / "dst" / "a.txt").mkdir(parents=True)  # a directory where a.txt goes
    result = sync(src, dst, delete=True)
    assert "a.txt" in result.failed
    assert result.deleted == 0
    assert dst.exists("old.txt")


# -- shards ------------------------------------------------------------------------------


def test_shards_split_the_keys_exactly(tmp_path: Path) -> None:
    """N runs with --shard 0/N ... N-1/N copy every key once, and each only its own."""
    src = _local(tmp_path, "src")
    tree = _tree(120)
    _fill(src, tree)
    dst = _local(tmp_path, "dst")
    seen: list[set[str]] = []
    for i in range(4):
        before = set(dst.list())
        result = sync(src, dst, shard=(i, 4))
        assert result.ok
        new = set(dst.list()) - before
        assert new == {k for k in tree if in_shard(k, (i, 4))}
        assert result.copied == len(new)
        seen.append(new)
    assert set().union(*seen) == set(tree)
    assert sum(map(len, seen)) == len(tree)
    assert all(seen), "120 keys over 4 shards: none is empty"
    assert sync(src, dst).copied == 0


def test_shard_deletes_only_its_own_keys(tmp_path: Path) -> None:
    src, dst = _local(tmp_path, "src"), _local(tmp_path, "dst")
    extra = {f"x{i}": b"x" for i in range(40)}
    _fill(dst, extra)
    _fill(src, {"keep": b"k"})
    result = sync(src, dst, delete=True, shard=(1, 3))
    assert set(dst.list()) - {"keep"} == {k for k in extra if not in_shard(k, (1, 3))}
    assert result.deleted == sum(in_shard(k, (1, 3)) for k in extra)


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_every_key_is_in_exactly_one_shard(key: str, n: int) -> None:
    assert sum(in_shard(key, (i, n)) for i in range(n)) == 1


def test_shard_is_stable_across_runs() -> None:
    """The split is a hash of the key, the same in every process and Python version."""
    assert [in_shard("photos/cat.jpg", (i, 4)) for i in range(4)].count(True) == 1
    assert in_shard("photos/cat.jpg", (1, 4))
    assert in_shard("a", (4, 8))


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1", "a/b", "1/0", ""])
def test_bad_shard_is_a_usage_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match="I/N"):
        parse_shard(text)
    (tmp_path / "s").mkdir()
    assert main(["sync", f"--shard={text}", str(tmp_path / "s"), str(tmp_path / "d")]) == 2


def test_shard_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _local(tmp_path, "src")
    tree = _tree(50)
    _fill(src, tree)
    assert main(["sync", "--shard", "2/5", str(tmp_path / "src"), str(tmp_path / "dst")]) == 0
    assert set(_local(tmp_path, "dst").list()) == {k for k in tree if in_shard(k, (2, 5))}


# -- listing order -------------------------------------------------------------------------

_NAMES = st.sampled_from(["a", "a-b", "a.txt", "a0", "b", "a b", "Z", "é", "a~", "!"])


@settings(max_examples=60, deadline=None)
@given(st.sets(st.lists(_NAMES, min_size=1, max_size=3).map("/".join), min_size=1, max_size=25))
def test_local_walk_is_in_key_order(
    tmp_path_factory: pytest.TempPathFactory, keys: set[str]
) -> None:
    """The local tree is walked lazily in exactly the order of its sorted keys (a
    directory ``a`` sorts as ``a/``), so it merges with an S3 listing."""
    # A name cannot be both a file and a directory: keep the keys that fit one tree.
    fitting: list[str] = []
    for key in sorted(keys, key=len):
        parents = {key[:i] for i in range(len(key)) if key[i] == "/"}
        if not any(k in parents or k.startswith(key + "/") for k in fitting):
            fitting.append(key)
    storage = open_storage(f"file://{tmp_path_factory.mktemp('walk')}/")
    for key in fitting:
        storage.write_bytes(key, b"x")
    assert list(storage.list()) == sorted(fitting)
    assert [k for k, _ in storage.scan()] == sorted(fitting)


# -- server-side copies --------------------------------------------------------------------

SERVER_SIDE = [
    ("s3-server", "s3-server"),
    ("s3-obstore", "s3-obstore"),
    ("s3-seaweedfs", "s3-seaweedfs"),
    ("s3-seaweedfs-obstore", "s3-seaweedfs"),
    ("azure", "azure"),
    ("gcs", "gcs"),
]


@pytest.mark.parametrize(("a", "b"), SERVER_SIDE, ids=[f"{a}-to-{b}" for a, b in SERVER_SIDE])
def test_copies_inside_one_service_send_no_byte_through_the_client(
    storage_factory: Any, monkeypatch: pytest.MonkeyPatch, a: str, b: str
) -> None:
    """Two buckets (containers) behind one endpoint and identity: every object is copied by
    the server; reading an object through this process would fail the test."""
    src, dst = storage_factory(a), storage_factory(b)
    tree = {**_tree(12), "big/video.bin": b"v" * (2 * 1024 * 1024 + 5)}
    _fill(src, tree)
    _assert_copied_by_the_server(src, dst, tree, monkeypatch)


def _assert_copied_by_the_server(
    src: Storage, dst: Storage, tree: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """sync(src, dst) copies every object of ``tree`` server-side (a read of the source
    through this process fails the test), and the copies are whole."""
    for name in ("read_bytes", "open_read", "read_many"):
        monkeypatch.setattr(src.backend, name, _no_bytes_through_the_client)
    result = sync(src, dst)
    assert result.ok, result.failed
    assert result.server_side == result.copied == len(tree)
    monkeypatch.undo()
    assert {k: dst.read_bytes(k) for k in dst.list()} == tree
    assert sync(src, dst).copied == 0


def _no_bytes_through_the_client(*args: object, **kwargs: object) -> None:
    raise AssertionError("an object's bytes passed through the client")


@pytest.mark.parametrize("kind", ["s3-obstore", "s3-seaweedfs-obstore"])
def test_copies_inside_one_bucket_take_object_store_copy(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Two prefixes of one bucket on the obstore engine: object_store's CopyObject, no
    botocore client (s3fs's copy would fail the test), no byte through this process."""
    from storage_dsn.schemes.s3.s3fs_engine import S3Backend
    from tests.conftest import KINDS

    dsn = KINDS[kind](request, tmp_path)
    src, dst = open_storage(dsn), open_storage(dsn.replace("/media/", "/copied/"))
    tree = {**_tree(8), "ü/a b.txt": b"odd name"}
    _fill(src, tree)
    monkeypatch.setattr(S3Backend, "_copy_object", _no_bytes_through_the_client)
    _assert_copied_by_the_server(src, dst, tree, monkeypatch)


def test_a_failed_object_store_copy_falls_back_to_s3fs(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What one CopyObject refuses (an object over 5 GiB) goes through s3fs's managed
    copy; a missing source stays a missing source."""
    import obstore

    from tests.conftest import KINDS

    dsn = KINDS["s3-seaweedfs-obstore"](request, tmp_path)
    src, dst = open_storage(dsn), open_storage(dsn.replace("/media/", "/copied/"))
    src.write_bytes("big.bin", b"pretend this is 6 GiB")

    def refuse(*args: object, **kwargs: object) -> None:
        from obstore.exceptions import GenericError

        raise GenericError("InvalidRequest: The specified copy source is larger than 5 GB")

    monkeypatch.setattr(obstore, "copy", refuse)
    copy = dst.backend.server_copy(src.backend)
    assert copy is not None
    copy("big.bin")
    assert dst.read_bytes("big.bin") == b"pretend this is 6 GiB"
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError):
        copy("missing.bin")


def test_copies_across_endpoints_stream(storage_factory: Any) -> None:
    """moto and SeaweedFS are two services: the bytes go through the client."""
    src, dst = storage_factory("s3-server"), storage_factory("s3-seaweedfs")
    _fill(src, _tree(5))
    result = sync(src, dst)
    assert result.ok
    assert result.copied == 5
    assert result.server_side == 0


def test_server_side_copy_applies_the_destination_settings(storage_factory: Any) -> None:
    """The destination's Cache-Control and a type guessed from the key are on the copy,
    as on any other write to it (SeaweedFS keeps Cache-Control)."""
    src = storage_factory("s3-seaweedfs")
    dst = storage_factory("s3-seaweedfs", "cache_control=public%2C%20max-age%3D60")
    src.write_bytes("a/page.html", b"<p>hi</p>")
    result = sync(src, dst)
    assert result.server_side == 1
    stored = head(dst, "a/page.html")
    assert stored["CacheControl"] == "public, max-age=60"
    assert stored["ContentType"] == "text/html"
    assert dst.read_bytes("a/page.html") == b"<p>hi</p>"


def test_plain_progress_lines_come_in_key_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Copies finish in any order; the log lists them in key order all the same."""
    import random

    src, dst = _local(tmp_path, "src"), _local(tmp_path, "dst")
    tree = _tree(40)
    _fill(src, tree)
    original = dst.backend.write_bytes

    def write_bytes(key: str, data: bytes) -> None:
        time.sleep(random.random() / 50)
        original(key, data)

    monkeypatch.setattr(dst.backend, "write_bytes", write_bytes)
    assert main(["sync", "--jobs", "8", str(tmp_path / "src"), str(tmp_path / "dst")]) == 0
    copied = [
        line.split()[1]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("copied  ")
    ]
    assert copied == sorted(tree)


def test_a_backend_on_one_connection_gets_one_request_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blocking filesystem on one connection (FTP) says so (``concurrency() == 1``):
    whatever --jobs says, sync sends it one request at a time."""
    src, dst = _local(tmp_path, "src"), _local(tmp_path, "dst")
    _fill(src, _tree(12))
    peak = _peak_writes(dst, monkeypatch, 0.02)
    monkeypatch.setattr(dst.backend, "concurrency", lambda: 1)
    assert sync(src, dst, jobs=8).copied == 12
    assert peak[0] == 1
