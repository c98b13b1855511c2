"""The Storage contract, one suite run on file, memory, S3 in-process and S3 over HTTP."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from storage_dsn import (
    ConfigurationError,
    InvalidKeyError,
    MissingBackendError,
    NoPublicURLError,
    Storage,
    open_storage,
    parse_dsn,
)
from storage_dsn.dsn import secret_values, with_param
from tests.conftest import (
    KEY_ID,
    QUOTED_SECRET,
    SECRET,
    STORED_TYPES,
    WRONG_CREDENTIALS,
    write_elsewhere,
    write_then_fail,
)

KEYS = [
    "a.txt",
    "photos/cat.jpg",
    "photos/2024/dog one.png",
    "ü/ñ.txt",
    "x+y=z?&#~.png",
    "100% pure.txt",
    "a/b/c/d/deep.txt",
]


class TestReadWrite:
    def test_round_trip(self, any_storage: Storage) -> None:
        """Bytes written under a key read back unchanged, for awkward keys too."""
        for i, key in enumerate(KEYS):
            any_storage.write_bytes(key, f"data {i}".encode())
        for i, key in enumerate(KEYS):
            assert any_storage.read_bytes(key) == f"data {i}".encode()

    def test_overwrite(self, any_storage: Storage) -> None:
        """A second write replaces the content."""
        any_storage.write_bytes("a.txt", b"one")
        any_storage.write_bytes("a.txt", b"two, longer")
        assert any_storage.read_bytes("a.txt") == b"two, longer"

    def test_open_write_then_read(self, any_storage: Storage) -> None:
        """open('wb') streams in; open('rb') streams out."""
        with any_storage.open("dir/f.bin", "wb") as f:
            for _ in range(10):
                f.write(b"0123456789")
        with any_storage.open("dir/f.bin") as f:
            assert f.read() == b"0123456789" * 10

    def test_text_mode(self, any_storage: Storage) -> None:
        """'w' and 'r' are UTF-8 text."""
        with any_storage.open("t.txt", "w") as f:
            f.write("héllo")
        with any_storage.open("t.txt", "r") as f:
            assert f.read() == "héllo"

    def test_bad_mode(self, any_storage: Storage) -> None:
        """Append and update modes are refused (they cannot be atomic on object stores)."""
        with pytest.raises(ValueError, match="mode"):
            any_storage.open("a.txt", "ab")

    def test_save_streams_a_file_object(self, any_storage: Storage) -> None:
        """save() copies a file object in and returns the key."""
        data = os.urandom(3 * 1024 * 1024 + 7)
        assert any_storage.save("up/big.bin", io.BytesIO(data)) == "up/big.bin"
        assert any_storage.read_bytes("up/big.bin") == data
        assert any_storage.stat("up/big.bin").size == len(data)

    def test_save_without_overwrite(self, any_storage: Storage) -> None:
        """overwrite=False creates a new key and refuses an existing one, keeping it."""
        assert any_storage.save("x/new.txt", io.BytesIO(b"one"), overwrite=False) == "x/new.txt"
        with pytest.raises(FileExistsError, match=r"x/new\.txt"):
            any_storage.save("x/new.txt", io.BytesIO(b"two"), overwrite=False)
        assert any_storage.read_bytes("x/new.txt") == b"one"
        with pytest.raises(FileExistsError), any_storage.open("x/new.txt", "xb") as f:
            f.write(b"three")
        assert any_storage.read_bytes("x/new.txt") == b"one"
        with any_storage.open("x/other.txt", "x") as text:
            text.write("created")
        assert any_storage.read_bytes("x/other.txt") == b"created"
        assert sorted(any_storage.list("x/")) == ["x/new.txt", "x/other.txt"]  # no temp left

    def test_exclusive_saves_race(self, any_storage: Storage) -> None:
        """Of concurrent overwrite=False saves to one key exactly one wins, whole."""
        from concurrent.futures import ThreadPoolExecutor

        bodies = [bytes([i]) * (64 * 1024) for i in range(8)]

        def attempt(body: bytes) -> bool:
            try:
                any_storage.save("race/k.bin", io.BytesIO(body), overwrite=False)
            except FileExistsError:
                return False
            return True

        with ThreadPoolExecutor(8) as pool:
            won = list(pool.map(attempt, bodies))
        assert won.count(True) == 1
        assert any_storage.read_bytes("race/k.bin") == bodies[won.index(True)]

    def test_large_write_spills_and_commits(self, any_storage: Storage) -> None:
        """A write past the in-memory limit goes through a temporary file, whole."""
        data = os.urandom(9 * 1024 * 1024)
        with any_storage.open("large.bin", "wb") as f:
            for start in range(0, len(data), 1024 * 1024):
                f.write(data[start : start + 1024 * 1024])
        assert any_storage.read_bytes("large.bin") == data

    def test_multi_block_round_trip(self, any_storage: Storage, tmp_path: Path) -> None:
        """12 MiB and 3 bytes round-trip through every write path (multipart on S3)."""
        data = os.urandom(12 * 1024 * 1024 + 3)
        any_storage.write_bytes("big/bytes.bin", data)
        source = tmp_path / "upload.bin"
        source.write_bytes(data)
        with source.open("rb") as f:
            any_storage.save("big/file.bin", f)
        any_storage.save("big/stream.bin", io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
        for key in ("big/bytes.bin", "big/file.bin", "big/stream.bin"):
            assert any_storage.stat(key).size == len(data)
            with any_storage.open(key, "rb") as f:
                assert b"".join(iter(lambda: f.read(1024 * 1024), b"")) == data


class TestAtomicWrites:
    def test_exception_in_with_keeps_old_content(self, any_storage: Storage) -> None:
        """Leaving the with block by an exception publishes nothing."""
        any_storage.write_bytes("k.txt", b"old")
        with pytest.raises(RuntimeError, match="crash"):
            write_then_fail(any_storage, "k.txt", b"new but torn")
        assert any_storage.read_bytes("k.txt") == b"old"

    def test_exception_leaves_no_new_object(self, any_storage: Storage) -> None:
        """A failed first write leaves no object at all."""
        with pytest.raises(RuntimeError, match="crash"):
            write_then_fail(any_storage, "new.txt", b"x" * 100)
        assert not any_storage.exists("new.txt")
        assert list(any_storage.list()) == []

    @pytest.mark.parametrize("mode", ["wb", "w", "xb", "x"])
    def test_exception_in_any_mode_leaves_no_object(self, any_storage: Storage, mode: str) -> None:
        """Binary or text, create or replace: a with block left by an exception stores
        nothing (a text wrapper's close must not commit)."""

        def crash() -> None:
            with any_storage.open("t.txt", mode) as f:
                f.write(b"half" if "b" in mode else "half")
                raise RuntimeError("crash")

        with pytest.raises(RuntimeError):
            crash()
        assert not any_storage.exists("t.txt")
        assert list(any_storage.list()) == []

    def test_unclosed_writer_publishes_nothing(self, any_storage: Storage) -> None:
        """A writer dropped without close() is discarded, not committed."""
        f = any_storage.open("dropped.txt", "wb")
        f.write(b"half")
        del f
        assert not any_storage.exists("dropped.txt")

    def test_not_visible_before_close(self, any_storage: Storage) -> None:
        """Readers do not see a write in progress."""
        any_storage.write_bytes("k.txt", b"old")
        with any_storage.open("k.txt", "wb") as f:
            f.write(b"new")
            assert any_storage.read_bytes("k.txt") == b"old"
        assert any_storage.read_bytes("k.txt") == b"new"


class TestMetadata:
    def test_exists(self, any_storage: Storage) -> None:
        """exists() is true for objects, false for missing keys and for directories."""
        any_storage.write_bytes("d/a.txt", b"x")
        assert any_storage.exists("d/a.txt")
        assert not any_storage.exists("d/b.txt")
        assert not any_storage.exists("d")

    def test_stat(self, any_storage: Storage) -> None:
        """stat() reports size, mtime and content type (and an ETag on S3)."""
        any_storage.write_bytes("p/cat.jpg", b"\xff\xd8" + b"x" * 98)
        st = any_storage.stat("p/cat.jpg")
        assert st.size == 100
        assert st.mtime is not None
        assert st.mtime > 1_600_000_000
        assert st.content_type == "image/jpeg"
        if any_storage.config.protocol == "s3":
            assert st.etag is not None
            assert len(st.etag) == 32

    def test_content_type_on_every_upload_path(self, any_storage: Storage, tmp_path: Path) -> None:
        """Every way of writing stores the type guessed from the key, read back by stat()."""
        source = tmp_path / "pic.png"
        source.write_bytes(b"\x89PNG" + b"x" * 100)
        any_storage.write_bytes("t/bytes.png", b"\x89PNG")
        any_storage.save("t/stream.png", io.BytesIO(b"\x89PNG"))
        with source.open("rb") as f:
            any_storage.save("t/file.png", f)
        with any_storage.open("t/open.png", "wb") as out:
            out.write(b"\x89PNG")
        any_storage.write_many({"t/many.png": b"\x89PNG"})
        keys = ["t/bytes.png", "t/file.png", "t/many.png", "t/open.png", "t/stream.png"]
        assert list(any_storage.list("t/")) == keys
        assert {k: any_storage.stat(k).content_type for k in keys} == dict.fromkeys(
            keys, "image/png"
        )

    def test_stored_content_type_is_read_back(self, any_storage: Storage, request: Any) -> None:
        """Where the server keeps a type, stat() reports it, not a guess from the key."""
        write_elsewhere(any_storage, "odd.png", b"x", content_type="application/x-odd")
        kind = request.node.callspec.params["any_storage"]
        expected = "application/x-odd" if kind in STORED_TYPES else "image/png"
        assert any_storage.stat("odd.png").content_type == expected
        assert dict(any_storage.scan())["odd.png"].size == 1

    def test_delete(self, any_storage: Storage) -> None:
        """delete() removes the object; deleting a missing key is FileNotFoundError."""
        any_storage.write_bytes("a.txt", b"x")
        any_storage.delete("a.txt")
        assert not any_storage.exists("a.txt")
        with pytest.raises(FileNotFoundError):
            any_storage.delete("a.txt")

    @pytest.mark.parametrize("op", ["read_bytes", "stat", "open"])
    def test_missing_key(self, any_storage: Storage, op: str) -> None:
        """A missing key raises FileNotFoundError, as in fsspec."""
        with pytest.raises(FileNotFoundError):
            getattr(any_storage, op)("nope/missing.txt")


class TestListing:
    def test_list_sorted_recursive(self, any_storage: Storage) -> None:
        """list() yields every key under the root, recursively and sorted."""
        for key in KEYS:
            any_storage.write_bytes(key, b"x")
        assert list(any_storage.list()) == sorted(KEYS)

    def test_list_prefix(self, any_storage: Storage) -> None:
        """A prefix selects by string prefix, as S3 does, directory or not."""
        for key in KEYS:
            any_storage.write_bytes(key, b"x")
        assert list(any_storage.list("photos/")) == ["photos/2024/dog one.png", "photos/cat.jpg"]
        assert list(any_storage.list("photos/c")) == ["photos/cat.jpg"]
        assert list(any_storage.list("pho")) == ["photos/2024/dog one.png", "photos/cat.jpg"]
        assert list(any_storage.list("nothing/")) == []

    def test_sees_writes_from_elsewhere(self, any_storage: Storage) -> None:
        """A listing is not cached: keys another process writes after it can be read.

        s3fs keeps the first listing of each directory and answers later lookups from it,
        so a long-running app would report a newly synced object as missing.
        """
        any_storage.write_bytes("d/old.txt", b"old")
        assert list(any_storage.list()) == ["d/old.txt"]
        write_elsewhere(any_storage, "d/new.txt", b"new")
        assert any_storage.exists("d/new.txt")
        assert any_storage.stat("d/new.txt").size == 3
        assert any_storage.read_bytes("d/new.txt") == b"new"
        assert list(any_storage.list()) == ["d/new.txt", "d/old.txt"]

    def test_markers_and_temp_names_hidden(self, any_storage: Storage) -> None:
        """Directory markers other tools leave, and temporary names, are never keys."""
        any_storage.write_bytes("d/real.txt", b"x")
        write_elsewhere(any_storage, "d/", b"")
        write_elsewhere(any_storage, "empty/", b"")
        write_elsewhere(any_storage, "d/.storage-dsn-0123456789abcdef.tmp", b"half")
        assert list(any_storage.list()) == ["d/real.txt"]
        assert [k for k, _ in any_storage.scan()] == ["d/real.txt"]
        assert list(any_storage.list("d/")) == ["d/real.txt"]

    def test_empty(self, any_storage: Storage) -> None:
        """An empty (or not yet created) storage lists nothing."""
        assert list(any_storage.list()) == []


TEMP = ".storage-dsn-0123456789abcdef.tmp"


class TestSweepTemp:
    """Temporary files of killed writers: never listed, swept when old, nothing else is."""

    @pytest.mark.parametrize("kind", ["file", "sftp"])
    def test_old_temp_files_swept(self, storage_factory: Any, kind: str) -> None:
        """A temp file older than the threshold goes; a fresh one, a look-alike, a
        dot-file and the keys stay; listings never show temp files."""
        st = storage_factory(kind)
        st.write_bytes("d/real.txt", b"x")
        old, fresh = f"d/{TEMP}", ".storage-dsn-fedcba9876543210.tmp"
        kept = ["d/.storage-dsn-notes.tmp", ".env", "d/real.txt"]
        for name in (old, fresh, *kept[:2]):
            write_elsewhere(st, name, b"half")
        root = Path(st.config.root)
        past = time.time() - 7200
        for name in (old, *kept):
            os.utime(root / name, (past, past))
        assert list(st.list()) == sorted(kept)
        assert st.sweep_temp() == 1
        assert not (root / old).exists()
        assert all((root / name).exists() for name in (fresh, *kept))
        assert st.sweep_temp(older_than=0) == 1  # the fresh one too, when asked
        assert all((root / name).exists() for name in kept)
        assert st.sweep_temp() == 0

    @pytest.mark.parametrize("kind", ["file", "sftp"])
    def test_nothing_written_yet(self, storage_factory: Any, kind: str) -> None:
        """A storage whose root does not exist yet has nothing to sweep."""
        assert storage_factory(kind).sweep_temp() == 0

    def test_killed_writer(self, tmp_path: Path) -> None:
        """A process killed mid-write leaves its temp file; once old, it is swept."""
        dsn = f"file://{tmp_path}/media/"
        code = (
            "import os; from storage_dsn import open_storage\n"
            f"f = open_storage({dsn!r}).open('photos/big.bin', 'wb')\n"
            "f.write(b'x' * 100_000); os._exit(9)"
        )
        assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 9
        left = list((tmp_path / "media" / "photos").iterdir())
        assert len(left) == 1
        assert left[0].name.startswith(".storage-dsn-")
        st = open_storage(dsn)
        assert list(st.list()) == []
        assert st.sweep_temp() == 0  # it might still be a write in progress
        past = time.time() - 3601
        os.utime(left[0], (past, past))
        assert st.sweep_temp() == 1
        assert list((tmp_path / "media" / "photos").iterdir()) == []

    @pytest.mark.parametrize("kind", ["memory", "s3-server", "s3-obstore"])
    def test_object_stores_have_none(self, storage_factory: Any, kind: str) -> None:
        """Backends that write no temp files sweep nothing, not even a look-alike."""
        st = storage_factory(kind)
        write_elsewhere(st, TEMP, b"someone else's")
        assert st.sweep_temp(older_than=0) == 0
        assert list(st.list()) == []
        assert st.fs.exists(TEMP)

    def test_temp_names_are_not_keys(self, storage_factory: Any) -> None:
        """A key shaped like a temp file would be hidden and swept: refused."""
        st = storage_factory("file")
        with pytest.raises(InvalidKeyError, match="reserved"):
            st.write_bytes(f"d/{TEMP}", b"x")
        st.write_bytes("d/.storage-dsn-notes.tmp", b"x")  # not the exact shape: a key
        with pytest.raises(ValueError, match="older_than"):
            st.sweep_temp(-1)


class TestMany:
    def test_write_many_read_many(self, any_storage: Storage) -> None:
        """write_many stores every pair; read_many returns them all by key."""
        items = {f"many/{i:03}.bin": os.urandom(64 + i) for i in range(200)}
        any_storage.write_many(items)
        assert any_storage.read_many(items) == items
        assert list(any_storage.list("many/")) == sorted(items)

    def test_read_many_missing(self, any_storage: Storage) -> None:
        """read_many raises FileNotFoundError naming the missing key."""
        any_storage.write_bytes("a.txt", b"x")
        with pytest.raises(FileNotFoundError, match=r"b\.txt"):
            any_storage.read_many(["a.txt", "b.txt"])

    def test_keys_validated_first(self, any_storage: Storage) -> None:
        """One bad key in a batch stops the batch before any write."""
        with pytest.raises(InvalidKeyError):
            any_storage.write_many({"ok.txt": b"x", "../bad": b"y"})
        assert not any_storage.exists("ok.txt")


class TestFilesystem:
    def test_fs_is_rooted(self, any_storage: Storage) -> None:
        """storage.fs is an fsspec filesystem whose paths are keys."""
        import fsspec

        any_storage.write_bytes("a/b.txt", b"via storage")
        assert isinstance(any_storage.fs, fsspec.AbstractFileSystem)
        assert any_storage.fs.cat_file("a/b.txt") == b"via storage"
        any_storage.fs.pipe_file("c.txt", b"via fs")
        assert any_storage.read_bytes("c.txt") == b"via fs"

    def test_local_path(self, any_storage: Storage) -> None:
        """local_path() is a Path for file storages and None elsewhere."""
        path = any_storage.local_path("a/b.txt")
        if any_storage.config.protocol == "file":
            assert isinstance(path, Path)
            assert path == Path(any_storage.config.root, "a/b.txt")
        else:
            assert path is None


class TestOpenStorage:
    def test_cached(self, tmp_path: Path) -> None:
        """The same config gives the same Storage, whatever its spelling."""
        a = open_storage(f"file://{tmp_path}/m/")
        b = open_storage(f"file://localhost{tmp_path}/m/")
        assert a is b

    def test_env_and_default(self, tmp_path: Path) -> None:
        """dsn=None reads the named variable, then the default."""
        environ = {"MEDIA_DSN": f"file://{tmp_path}/env/"}
        st = open_storage(None, env="MEDIA_DSN", environ=environ)
        assert st.config.root == f"{tmp_path}/env"
        st = open_storage(None, env="MEDIA_DSN", default=f"file://{tmp_path}/d/", environ={})
        assert st.config.root == f"{tmp_path}/d"

    def test_default_env_name(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without arguments the DSN comes from DEFAULT_STORAGE_DSN."""
        monkeypatch.setenv("DEFAULT_STORAGE_DSN", "memory://envtest/")
        assert open_storage().config.protocol == "memory"

    def test_no_dsn(self) -> None:
        """No DSN anywhere is a ConfigurationError naming the variable."""
        with pytest.raises(ConfigurationError, match="DEFAULT_STORAGE_DSN"):
            open_storage(environ={})

    @pytest.mark.usefixtures("without_gcsfs")
    def test_missing_backend(self) -> None:
        """A scheme whose extra is missing fails at open_storage, naming the extra."""
        with pytest.raises(MissingBackendError, match=r'pip install "storage-dsn\[gcs\]"'):
            open_storage("gs://bucket/prefix/")

    def test_lazy_filesystem(self, tmp_path: Path) -> None:
        """Opening a storage creates no filesystem until the first I/O."""
        st = open_storage(f"file://{tmp_path}/lazy/")
        assert st._backend is None
        assert not (tmp_path / "lazy").exists()
        st.write_bytes("a", b"x")
        assert st._backend is not None


class TestEnvironment:
    """What open_storage(environ=...) is given reaches everything that reads it."""

    def _dsn_without_key(self, storage_factory: Any, kind: str) -> str:
        dsn = storage_factory(kind).config.to_dsn()
        return dsn.replace(f"{KEY_ID}:{QUOTED_SECRET}@", "")

    @pytest.mark.parametrize("kind", ["s3-server", "s3-obstore"])
    def test_credentials_from_injected_environ(
        self, storage_factory: Any, monkeypatch: pytest.MonkeyPatch, kind: str
    ) -> None:
        """Credentials not in the DSN come from the environ given, on both engines."""
        dsn = self._dsn_without_key(storage_factory, kind)
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        environ = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
        storage = open_storage(dsn, environ=environ)
        storage.write_bytes("env.txt", b"from the injected environment")
        assert storage.read_bytes("env.txt") == b"from the injected environment"
        signed = open_storage(with_param(dsn, "qs_auth", "true"), environ=environ)
        assert f"X-Amz-Credential={KEY_ID}%2F" in signed.url("env.txt")

    def test_signed_storage_opens_without_credentials(
        self, storage_factory: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """qs_auth=true with no key anywhere still opens; only url() needs credentials."""
        dsn = with_param(self._dsn_without_key(storage_factory, "s3-server"), "qs_auth", "true")
        storage = open_storage(dsn, environ={})
        with pytest.raises(NoPublicURLError, match="credentials"):
            storage.url("a.txt")
        with pytest.raises(InvalidKeyError):
            storage.url("../a.txt")  # the key is still checked first

    def test_injected_environ_is_not_shared(self, tmp_path: Path) -> None:
        """A storage opened with its own environ is its own, not the cached one."""
        dsn = f"file://{tmp_path}/m/"
        assert open_storage(dsn, environ={}) is not open_storage(dsn)
        assert open_storage(dsn) is open_storage(dsn)


class TestEngines:
    def test_engine_is_not_an_fsspec_option(self) -> None:
        """engine= picks the backend; it never reaches the filesystem class."""
        config = parse_dsn(f"s3://{KEY_ID}:{QUOTED_SECRET}@b.s3.amazonaws.com/?engine=obstore")
        assert "engine" not in config.options
        assert config.settings["engine"] == "obstore"
        assert "fsync" not in parse_dsn("file:///srv/m/?fsync=true").options

    def test_for_transfer(self, storage_factory: Any) -> None:
        """S3 moves through obstore unless the DSN chose; other storages are themselves."""
        s3 = storage_factory("s3-server")
        fast = s3.for_transfer()
        assert fast.config.settings["engine"] == "obstore"
        assert fast.config.root == s3.config.root
        assert fast.for_transfer() is fast
        assert storage_factory("s3-server", "engine=s3fs").for_transfer().config.settings == {
            "engine": "s3fs"
        }
        acl = storage_factory("s3-server", "acl=public-read")
        assert acl.for_transfer() is acl  # obstore cannot set ACLs
        local = storage_factory("file")
        assert local.for_transfer() is local


class TestScan:
    def test_scan_matches_list_and_stat(self, any_storage: Storage) -> None:
        """scan() yields list()'s keys with the sizes and mtimes stat() reports."""
        for i, key in enumerate(KEYS):
            any_storage.write_bytes(key, b"x" * (i + 1))
        scanned = list(any_storage.scan())
        assert [k for k, _ in scanned] == list(any_storage.list())
        for key, st in scanned:
            full = any_storage.stat(key)
            assert st.size == full.size
            assert st.mtime is not None
            assert full.mtime is not None
            assert abs(st.mtime - full.mtime) < 1
        assert [k for k, _ in any_storage.scan("photos/")] == list(any_storage.list("photos/"))


class TestReading:
    def test_seek_and_partial_reads(self, any_storage: Storage) -> None:
        """open('rb') reads in pieces and seeks anywhere, forwards, backwards and from the end."""
        data = os.urandom(3 * 1024 * 1024 + 11)
        any_storage.write_bytes("r.bin", data)
        with any_storage.open("r.bin") as f:
            assert f.read(10) == data[:10]
            f.seek(2 * 1024 * 1024)
            assert f.tell() == 2 * 1024 * 1024
            assert f.read(100) == data[2 * 1024 * 1024 : 2 * 1024 * 1024 + 100]
            f.seek(5)
            assert f.read(5) == data[5:10]
            f.seek(-11, os.SEEK_END)
            assert f.read() == data[-11:]
            assert f.read() == b""


def test_obstore_uploads_carry_crc64nvme(storage_factory: Any, tmp_path: Path) -> None:
    """engine=obstore uploads carry CRC64-NVME checksums for S3 to verify (that a
    corrupted body is then refused: tests/test_large.py).

    moto records a checksum only for SDK-flagged single PUTs, so the single-PUT case is
    checked on the store's settings, the multipart one on what the server stored.
    """
    import boto3

    from storage_dsn.schemes.s3 import location, obstore_engine

    storage = storage_factory("s3-obstore")
    config = storage.backend.store.config  # type: ignore[attr-defined]
    assert config["checksum_algorithm"].lower() == "crc64nvme"
    data = os.urandom(12 * 1024 * 1024)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(obstore_engine, "SINGLE_PUT", 8 * 1024 * 1024)  # 12 MiB goes multipart
        with source.open("rb") as f:
            storage.save("up.bin", f)
    where = location(storage.config)
    head = boto3.client("s3", endpoint_url=where.endpoint).head_object(
        Bucket=where.bucket, Key=f"{where.prefix}/up.bin", ChecksumMode="ENABLED"
    )
    assert head["ChecksumCRC64NVME"]
    assert storage.read_bytes("up.bin") == data


@pytest.mark.parametrize("kind", sorted(WRONG_CREDENTIALS))
@pytest.mark.parametrize("op", ["write_bytes", "read_bytes", "list"])
def test_wrong_credentials(storage_factory: Any, kind: str, op: str) -> None:
    """A wrong secret is a PermissionError: one readable line, no secret anywhere in it."""
    good = storage_factory(kind)
    good.write_bytes("a.txt", b"x")
    bad = open_storage(WRONG_CREDENTIALS[kind](good.config.to_dsn()))
    calls = {
        "write_bytes": lambda: bad.write_bytes("a.txt", b"y"),
        "read_bytes": lambda: bad.read_bytes("a.txt"),
        "list": lambda: list(bad.list()),
    }
    with pytest.raises(PermissionError) as info:
        calls[op]()
    message = str(info.value)
    assert "\n" not in message
    assert len(message) < 300
    shown = message + repr(info.value) + "".join(traceback.format_exception(info.value))
    for secret in secret_values(bad.config):
        assert secret not in shown
    assert good.read_bytes("a.txt") == b"x"
