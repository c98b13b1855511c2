"""sync between every pair of backends, its flags, and resuming after SIGKILL."""

from __future__ import annotations

import fnmatch
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage_dsn import Storage, open_storage
from storage_dsn.cli import main
from storage_dsn.sync import exclude_matcher, plan_sync, sync
from tests.conftest import QUOTED_SECRET, SECRET

TREE = {
    "a.txt": b"alpha",
    "photos/2024/cat.jpg": b"\xff\xd8" + b"c" * 3000,
    "photos/ü ñ/dog one.png": b"\x89PNG" + b"d" * 5000,
    "docs/readme.md": b"# readme\n",
    "deep/a/b/c/d/e.bin": os.urandom(2048),
    "big/video.bin": os.urandom(3 * 1024 * 1024 + 17),  # streamed, not batched
}


def fill(storage: Storage, tree: dict[str, bytes]) -> None:
    storage.write_many({k: v for k, v in tree.items() if len(v) < 1024 * 1024})
    for key, data in tree.items():
        if len(data) >= 1024 * 1024:
            storage.write_bytes(key, data)


def contents(storage: Storage) -> dict[str, bytes]:
    return {key: storage.read_bytes(key) for key in storage.list()}


PAIRS = [
    ("file", "s3-server"),
    ("s3-server", "file"),
    ("s3-server", "s3-server"),
    ("file", "file"),
    ("memory", "s3-mock"),
    ("file", "s3-obstore"),
    ("s3-obstore", "memory"),
]


def test_command_round_trip(any_storage: Storage, tmp_path: Path) -> None:
    """storage-dsn sync of a local tree to each backend and back gives the same tree."""
    src, back = tmp_path / "tree", tmp_path / "back"
    for key, data in TREE.items():
        (src / key).parent.mkdir(parents=True, exist_ok=True)
        (src / key).write_bytes(data)
    dsn = any_storage.config.to_dsn()
    assert main(["sync", str(src), dsn]) == 0
    assert contents(any_storage) == TREE
    assert main(["sync", dsn, str(back)]) == 0
    copied = {str(p.relative_to(back)): p.read_bytes() for p in back.rglob("*") if p.is_file()}
    assert copied == TREE


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_sync_pairs(storage_factory: Any, a: str, b: str) -> None:
    """A sync copies the tree exactly; a second sync copies nothing."""
    src, dst = storage_factory(a), storage_factory(b)
    if a == b == "file":
        dst = open_storage(src.config.to_dsn().replace("/media/", "/copy/"))
    fill(src, TREE)
    first = sync(src, dst, jobs=4)
    assert first.ok
    assert first.copied == len(TREE)
    assert contents(dst) == TREE
    again = sync(src, dst)
    assert (again.copied, again.skipped, again.deleted) == (0, len(TREE), 0)


class TestFlags:
    @pytest.fixture
    def pair(self, tmp_path: Path) -> tuple[Storage, Storage]:
        src = open_storage(f"file://{tmp_path}/src/")
        dst = open_storage(f"file://{tmp_path}/dst/")
        fill(src, TREE)
        return src, dst

    def test_delete(self, pair: tuple[Storage, Storage]) -> None:
        """--delete removes what the source lacks; without it nothing is deleted."""
        src, dst = pair
        dst.write_bytes("extra.txt", b"only here")
        assert sync(src, dst).deleted == 0
        assert dst.exists("extra.txt")
        result = sync(src, dst, delete=True)
        assert result.deleted == 1
        assert contents(dst) == TREE

    def test_dry_run(self, pair: tuple[Storage, Storage]) -> None:
        """A dry run plans and changes nothing."""
        src, dst = pair
        dst.write_bytes("extra.txt", b"x")
        plan = plan_sync(src, dst, delete=True)
        assert sorted(k for k, _ in plan.copy) == sorted(TREE)
        assert plan.delete == ["extra.txt"]
        sync(src, dst, delete=True, dry_run=True)
        assert list(dst.list()) == ["extra.txt"]

    def test_exclude(self, pair: tuple[Storage, Storage]) -> None:
        """--exclude globs keep keys out of copies and deletions."""
        src, dst = pair
        dst.write_bytes("docs/local-only.md", b"keep me")
        sync(src, dst, exclude=["photos/*", "docs/*"], delete=True)
        assert sorted(dst.list()) == sorted(
            ["a.txt", "deep/a/b/c/d/e.bin", "big/video.bin", "docs/local-only.md"]
        )

    def test_changed_size_and_newer(self, pair: tuple[Storage, Storage]) -> None:
        """A new size, or a newer source, is copied again."""
        src, dst = pair
        sync(src, dst)
        src.write_bytes("a.txt", b"alpha, longer now")
        path = src.local_path("docs/readme.md")
        assert path is not None
        path.write_bytes(b"# README\n")  # same size, newer
        future = time.time() + 10
        os.utime(path, (future, future))
        result = sync(src, dst)
        assert result.copied == 2
        assert contents(dst) == contents(src)

    def test_checksum(self, pair: tuple[Storage, Storage]) -> None:
        """Same size and time but other bytes: only --checksum notices."""
        src, dst = pair
        sync(src, dst)
        dst_path = dst.local_path("a.txt")
        assert dst_path is not None
        st = dst_path.stat()
        dst_path.write_bytes(b"ALPHA")
        os.utime(dst_path, (st.st_atime, st.st_mtime))
        assert sync(src, dst).copied == 0
        result = sync(src, dst, checksum=True)
        assert result.copied == 1
        assert dst.read_bytes("a.txt") == b"alpha"

    def test_checksum_and_time_errors_are_scrubbed(
        self, pair: tuple[Storage, Storage], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A backend's error from hashing or from setting a copy's time reaches the
        result as what it is, with the storages' secrets masked, like any other call's."""
        from storage_dsn import redaction

        src, dst = pair
        redaction.remember([SECRET])

        def refuse(*_args: Any) -> Any:
            raise RuntimeError(f"backend said no, with {SECRET} in its text")

        monkeypatch.setattr(type(dst.backend), "set_mtime", refuse)
        result = sync(src, dst)
        assert result.failed
        assert all(SECRET not in error for error in result.failed.values())
        assert any("***" in error for error in result.failed.values())
        monkeypatch.undo()
        sync(src, dst)
        monkeypatch.setattr(type(src.backend), "md5", refuse)
        with pytest.raises(RuntimeError) as raised:
            plan_sync(src, dst, checksum=True)
        assert SECRET not in str(raised.value)
        assert "***" in str(raised.value)

    @pytest.mark.s3
    def test_checksum_uses_s3_etags(self, storage_factory: Any, tmp_path: Path) -> None:
        """--checksum against S3 compares plain-MD5 ETags with local hashes."""
        src = open_storage(f"file://{tmp_path}/src/")
        dst = storage_factory("s3-server")
        fill(src, TREE)
        sync(src, dst)
        result = sync(src, dst, checksum=True)
        assert result.copied == 0
        assert result.skipped == len(TREE)


EXCLUDES = [
    # (pattern, key, excluded): rsync's rules, as the docs show them
    (".DS_Store", ".DS_Store", True),
    (".DS_Store", "photos/.DS_Store", True),
    (".DS_Store", "photos/2024/.DS_Store", True),
    (".DS_Store", "photos/.DS_Store.jpg", False),
    ("*.tmp", "a/b/c.tmp", True),
    ("*.tmp", "a.tmp/keep.jpg", True),  # a directory named so: everything under it
    ("cache", "a/cache/x.jpg", True),
    ("cache", "a/cache", True),
    ("cache/", "a/cache/x.jpg", True),
    ("cache/", "a/cache", False),  # a trailing / matches directories only
    ("/cache", "cache/x.jpg", True),
    ("/cache", "a/cache/x.jpg", False),  # a leading / anchors at the root
    ("/a.txt", "a.txt", True),
    ("/a.txt", "sub/a.txt", False),
    ("photos/*", "photos/cat.jpg", True),
    ("photos/*", "photos/2024/cat.jpg", True),  # * matches the directory 2024
    ("photos/*", "old/photos/cat.jpg", False),  # an inner / anchors too
    ("photos/*.jpg", "photos/2024/cat.jpg", False),  # * does not cross /
    ("photos/**.jpg", "photos/2024/cat.jpg", True),  # ** does
    ("photos/**", "photos", False),
    ("**/thumbs/", "thumbs/a.jpg", True),  # **/ also matches no directory
    ("**/thumbs/", "x/y/thumbs/a.jpg", True),
    ("**/thumbs/", "x/thumbs", False),
    ("img?.png", "a/img1.png", True),
    ("img?.png", "a/img10.png", False),
    ("*.jp[eg]", "x.jpg", True),
    ("*.jp[!eg]", "x.jpg", False),
    ("[a-c]*", "z/b.txt", True),
    ("\\*", "*", True),
    ("\\*", "x", False),
]


class TestExclude:
    @pytest.mark.parametrize(
        ("pattern", "key", "excluded"), EXCLUDES, ids=[f"{p}~{k}" for p, k, _ in EXCLUDES]
    )
    def test_table(self, pattern: str, key: str, excluded: bool) -> None:
        """Each documented case matches as rsync would."""
        assert exclude_matcher([pattern])(key) is excluded

    @pytest.mark.parametrize("pattern", ["", "/", "//"])
    def test_empty_pattern(self, pattern: str) -> None:
        """A pattern with no name in it is refused, not read as 'everything'."""
        with pytest.raises(ValueError, match="exclude pattern"):
            exclude_matcher([pattern])

    @given(
        st.from_regex(r"[ab.*?]{1,6}|[ab]{0,2}\[!?[ab.]{1,2}\][ab*]{0,2}", fullmatch=True),
        st.text(alphabet="ab.", min_size=1, max_size=6),
    )
    def test_a_name_as_the_shell_matches_it(self, pattern: str, name: str) -> None:
        """On one name, a pattern without / matches as the shell's fnmatch does."""
        assert exclude_matcher([pattern])(name) is fnmatch.fnmatchcase(name, pattern)

    @given(
        st.lists(st.text(alphabet="ab.", min_size=1, max_size=3), min_size=1, max_size=5),
        st.text(alphabet="ab.", min_size=1, max_size=3),
    )
    def test_a_literal_name_anywhere(self, names: list[str], literal: str) -> None:
        """A plain name excludes exactly the keys with it as a component; anchored, only
        the keys that start with it; with a trailing /, only as a directory."""
        key = "/".join(names)
        assert exclude_matcher([literal])(key) is (literal in names)
        assert exclude_matcher(["/" + literal])(key) is (names[0] == literal)
        assert exclude_matcher([literal + "/"])(key) is (literal in names[:-1])

    def test_sync_excludes_a_name_in_every_directory(self, tmp_path: Path) -> None:
        """--exclude .DS_Store keeps every .DS_Store out, and off the delete list."""
        src = open_storage(f"file://{tmp_path}/src/")
        dst = open_storage(f"file://{tmp_path}/dst/")
        fill(
            src, {"a.jpg": b"a", ".DS_Store": b"x", "photos/.DS_Store": b"x", "photos/b.jpg": b"b"}
        )
        dst.write_bytes("old/.DS_Store", b"the destination's own")
        sync(src, dst, exclude=[".DS_Store"], delete=True)
        assert sorted(dst.list()) == ["a.jpg", "old/.DS_Store", "photos/b.jpg"]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storage_dsn", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


class TestCommand:
    @pytest.mark.s3
    def test_local_to_s3_by_variable(self, storage_factory: Any, tmp_path: Path) -> None:
        """`sync ./data/media DEFAULT_STORAGE_DSN`: path and variable, lines, summary."""
        dst = storage_factory("s3-server")
        src = open_storage(f"file://{tmp_path}/data/media/")
        fill(src, TREE)
        env = {"DEFAULT_STORAGE_DSN": dst.config.to_dsn()}
        r = subprocess.run(
            [sys.executable, "-m", "storage_dsn", "sync", "./data/media", "DEFAULT_STORAGE_DSN"],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=tmp_path,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        assert "engine=obstore" in r.stdout  # S3 moves through obstore when installed
        assert f"copied {len(TREE)}, skipped 0" in r.stdout
        assert "copied  photos/ü ñ/dog one.png" in r.stdout
        assert f"copied {len(TREE)}, skipped 0, deleted 0, failed 0" in r.stdout
        assert SECRET not in r.stdout + r.stderr
        assert QUOTED_SECRET not in r.stdout + r.stderr
        assert contents(dst) == TREE

    @pytest.mark.s3
    def test_engine_choice(self, storage_factory: Any, tmp_path: Path) -> None:
        """A DSN naming an engine keeps it, and acl= keeps s3fs (obstore cannot set ACLs)."""
        src = open_storage(f"file://{tmp_path}/s/")
        fill(src, {"a.txt": b"x"})
        for query, engine in (("engine=s3fs", "engine=s3fs"), ("acl=public-read", None)):
            dst = storage_factory("s3-server", query)
            r = run_cli("sync", src.config.to_dsn(), dst.config.to_dsn(), env={})
            assert r.returncode == 0, r.stderr
            to_line = next(line for line in r.stdout.splitlines() if line.startswith("to "))
            assert "engine=obstore" not in to_line
            if engine:
                assert engine in to_line
            assert dst.read_bytes("a.txt") == b"x"

    def test_dry_run_output(self, tmp_path: Path) -> None:
        """--dry-run prints the plan and a summary."""
        src = open_storage(f"file://{tmp_path}/s/")
        fill(src, {"a.txt": b"x", "b.txt": b"y"})
        r = run_cli("sync", "--dry-run", f"file://{tmp_path}/s/", f"file://{tmp_path}/d/", env={})
        assert r.returncode == 0
        assert "would copy   a.txt (1 B)" in r.stdout
        assert "dry run: 2 to copy" in r.stdout
        assert not (tmp_path / "d").exists()

    def test_same_storage_refused(self, tmp_path: Path) -> None:
        """Syncing a storage onto itself is a usage error."""
        r = run_cli("sync", f"file://{tmp_path}/s/", f"file://localhost{tmp_path}/s/", env={})
        assert r.returncode == 2

    def test_failures_exit_1(self, tmp_path: Path) -> None:
        """An object that cannot be written is reported, counted, and makes exit 1."""
        src = open_storage(f"file://{tmp_path}/s/")
        fill(src, {"ok.txt": b"fine", "blocked/x.txt": b"cannot land"})
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "blocked").write_bytes(b"a file where a directory must be")
        r = run_cli("sync", "--jobs", "2", f"file://{tmp_path}/s/", f"file://{tmp_path}/d/", env={})
        assert r.returncode == 1
        assert "failed: blocked/x.txt" in r.stderr
        assert "copied 1, skipped 0, deleted 0, failed 1" in r.stdout
        assert (tmp_path / "d" / "ok.txt").read_bytes() == b"fine"


def settled(storage: Storage) -> list[str]:
    """The keys once the server has finished requests the killed process had in flight.

    A moto server can still be handling a PUT whose client died (seen: a key listed, then
    not found by a GET a moment later); wait for two identical listings in a row.
    """
    before: list[str] | None = None
    for _ in range(50):
        now = list(storage.list())
        if now == before:
            return now
        before = now
        time.sleep(0.2)
    raise AssertionError("the destination kept changing after the sync was killed")


@pytest.mark.parametrize("kind", ["file", "s3-server", "s3-obstore"])
def test_killed_sync_resumes(storage_factory: Any, tmp_path: Path, kind: str) -> None:
    """SIGKILL mid-sync leaves only whole objects; a re-run completes the tree."""
    src = open_storage(f"file://{tmp_path}/big-src/")
    tree = {f"d{i % 7}/f{i:04}.bin": os.urandom(16 * 1024 + i) for i in range(600)}
    tree.update({f"large/{i}.bin": os.urandom(2 * 1024 * 1024 + i) for i in range(6)})
    fill(src, tree)
    dst = storage_factory(kind) if kind != "file" else open_storage(f"file://{tmp_path}/big-dst/")
    args = [
        sys.executable,
        "-m",
        "storage_dsn",
        "sync",
        "--jobs",
        "2",
        src.config.to_dsn(),
        dst.config.to_dsn(),
    ]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        copied = 0
        for line in proc.stdout:
            copied += line.startswith("copied  ")
            if copied >= 40:
                break
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    landed = settled(dst)
    assert 0 < len(landed) < len(tree)
    for key in landed:
        assert dst.read_bytes(key) == tree[key], key
    again = sync(src, dst, jobs=4)
    assert again.ok
    # A PUT whose body reached the server before the kill may still land after the
    # listing above, so "at least": nothing that landed is copied again.
    assert again.skipped >= len(landed)
    assert again.copied + again.skipped == len(tree)
    assert contents(dst) == tree


def test_every_run_exits_with_its_own_code(storage_factory: Any, tmp_path: Path) -> None:
    """sync through obstore's async runtime, run after run, always exits 0 once done.

    With the runtime's loop thread alive at interpreter shutdown, a finished sync could
    die with SIGABRT (exit -6). Bounded: 12 runs of a small tree.
    """
    dst = storage_factory("s3-seaweedfs")
    src = tmp_path / "tree"
    for i in range(40):
        (src / f"d{i % 4}" / f"{i}.txt").parent.mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 4}" / f"{i}.txt").write_bytes(os.urandom(300))
    codes = []
    for i in range(12):
        (src / "changed.txt").write_bytes(str(i).encode())
        r = subprocess.run(
            [sys.executable, "-m", "storage_dsn", "sync", str(src), dst.config.to_dsn()],
            capture_output=True,
            text=True,
            timeout=120,
        )
        codes.append(r.returncode)
        assert "engine=obstore" in r.stdout
    assert codes == [0] * 12


def put_raw(storage: Storage, names: dict[str, bytes]) -> None:
    """Store objects under names as other S3 tools may write them, with boto3 directly:
    names that are not keys (``a//b``) and folder markers (``dir/``) included."""
    import boto3

    from storage_dsn.schemes.s3 import location

    where = location(storage.config)
    client = boto3.client("s3", endpoint_url=where.endpoint, region_name="us-east-1")
    for name, data in names.items():
        client.put_object(Bucket=where.bucket, Key=f"{where.prefix}/{name}", Body=data)


def raw_names(storage: Storage) -> list[str]:
    """Every object name under the storage's prefix, as S3 lists it."""
    import boto3

    from storage_dsn.schemes.s3 import location

    where = location(storage.config)
    client = boto3.client("s3", endpoint_url=where.endpoint, region_name="us-east-1")
    found = client.list_objects_v2(Bucket=where.bucket, Prefix=f"{where.prefix}/")
    return sorted(o["Key"][len(where.prefix) + 1 :] for o in found.get("Contents", []))


LONG = "n" * 300 + ".txt"  # a valid key, too long for a local file name
#: What other tools leave in a bucket: name -> content.
ODD = {
    "x//y.txt": b"double slash",
    "/lead.txt": b"leading slash",
    "a": b"a file named like a folder",
    "a/b.txt": b"in the folder",
    LONG: b"long",
    # Folder markers: the console's (with keys under it), an empty folder's, and one beside
    # an object of the same name (obstore lists both as "m": the object must win).
    "photos/": b"",
    "photos/cat.jpg": b"meow",
    "e/": b"",
    "m": b"object",
    "m/": b"",
    "ok.txt": b"fine",
}
ENGINES = {"s3fs": ("s3-server", "engine=s3fs"), "obstore": ("s3-obstore", "")}


@pytest.mark.s3
@pytest.mark.parametrize("engine", list(ENGINES))
class TestOddNames:
    """Names other tools put in a bucket that are not keys, or that the other side cannot
    hold, are shown by ls, ignored by sync with a reason, and never crash or delete."""

    @pytest.fixture
    def bucket(self, storage_factory: Any, engine: str) -> Storage:
        storage: Storage = storage_factory(*ENGINES[engine])
        put_raw(storage, ODD)
        return storage

    def test_folder_markers_are_not_keys(
        self, storage_factory: Any, engine: str, tmp_path: Path
    ) -> None:
        """Markers alone (no odd names: obstore lists it itself) are not keys; an object
        beside its marker keeps its size; a sync copies the objects only."""
        st: Storage = storage_factory(*ENGINES[engine])
        put_raw(
            st,
            {k: v for k, v in ODD.items() if k in ("photos/", "photos/cat.jpg", "e/", "m", "m/")},
        )
        assert {k: s.size for k, s in st.scan()} == {"m": 6, "photos/cat.jpg": 4}
        result = sync(st, open_storage(f"file://{tmp_path}/copy/"))
        assert (result.copied, result.ignored, result.ok) == (2, {}, True)
        assert (tmp_path / "copy" / "m").read_bytes() == b"object"

    def test_list_skips_names_that_are_not_keys(self, bucket: Storage) -> None:
        """Storage.list gives only keys (each readable); scan(invalid=) reports the rest."""
        keys = ["a", "a/b.txt", "m", LONG, "ok.txt", "photos/cat.jpg"]
        assert list(bucket.list()) == keys
        assert bucket.stat("m").size == len(ODD["m"])
        for key in keys:
            assert bucket.read_bytes(key) == ODD[key]
        odd: dict[str, str] = {}
        scanned = dict(bucket.scan(invalid=odd.__setitem__))
        assert list(scanned) == keys
        assert scanned["m"].size == len(ODD["m"])
        assert sorted(odd) == ["/lead.txt", "x//y.txt"]
        assert "empty segment" in odd["x//y.txt"]

    def test_ls_shows_them_safely(
        self, bucket: Storage, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """ls lists every object with one warning per name that is not a key; no marker."""
        for args in (["ls"], ["ls", "-l"]):
            assert main([*args, bucket.config.to_dsn()]) == 0
            out, err = capsys.readouterr()
            names = [line.split("  ")[-1] for line in out.splitlines()]
            assert names == [
                "/lead.txt",
                "a",
                "a/b.txt",
                "m",
                LONG,
                "ok.txt",
                "photos/cat.jpg",
                "x//y.txt",
            ]
            warnings = err.strip().splitlines()
            assert len(warnings) == 2
            assert all("not a valid key" in line for line in warnings)

    def test_sync_to_files_ignores_each_with_a_reason(
        self, bucket: Storage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """To a directory: what a file system can hold is copied, the rest is ignored
        (one line each, counted), exit 0; a second run copies nothing."""
        target = tmp_path / "copy"
        assert main(["sync", bucket.config.to_dsn(), str(target)]) == 0
        out, err = capsys.readouterr()
        files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
        assert files == ["a/b.txt", "m", "ok.txt", "photos/cat.jpg"]
        assert (target / "m").read_bytes() == ODD["m"]
        ignored = [line for line in err.splitlines() if "ignored: " in line]
        assert len(ignored) == 4, err
        for name, why in (
            ("x//y.txt", "not a valid key"),
            ("/lead.txt", "not a valid key"),
            ("a", "folder of other keys"),
            (LONG, "255 UTF-8 bytes"),
        ):
            assert any(f"ignored: {name}: " in line and why in line for line in ignored), name
        assert "copied 4, skipped 0, deleted 0, failed 0, ignored 4;" in out
        assert "Traceback" not in err
        assert main(["sync", bucket.config.to_dsn(), str(target)]) == 0
        assert "copied 0, skipped 4, deleted 0, failed 0, ignored 4;" in capsys.readouterr().out

    def test_dry_run_lists_them(
        self, bucket: Storage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--dry-run says what it would ignore, and why."""
        assert main(["sync", "--dry-run", bucket.config.to_dsn(), str(tmp_path / "c")]) == 0
        out = capsys.readouterr().out
        assert "would ignore x//y.txt: not a valid key" in out
        assert "dry run: 4 to copy (27 B), 0 to delete, 0 up to date, 4 ignored" in out

    def test_sync_to_memory(self, bucket: Storage, storage_factory: Any) -> None:
        """The memory file system keeps files in folders too: "a" is ignored there."""
        result = sync(bucket, storage_factory("memory"))
        assert result.ok
        assert sorted(result.ignored) == ["/lead.txt", "a", "x//y.txt"]
        assert result.copied == 5

    def test_sync_between_buckets_keeps_what_s3_holds(
        self, bucket: Storage, storage_factory: Any
    ) -> None:
        """S3 to S3: "a" beside "a/b.txt" and the long name are copied; only names that
        are not keys are ignored."""
        other = storage_factory("s3-server")
        result = sync(bucket, other)
        assert result.ok
        assert sorted(result.ignored) == ["/lead.txt", "x//y.txt"]
        assert list(other.list()) == ["a", "a/b.txt", "m", LONG, "ok.txt", "photos/cat.jpg"]
        assert other.read_bytes("m") == ODD["m"]

    def test_delete_never_removes_them(
        self, bucket: Storage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """sync --delete into the bucket deletes stale keys, never names it cannot
        address: they are reported as not deleted; folder markers stay too."""
        source = tmp_path / "src"
        source.mkdir()
        (source / "ok.txt").write_bytes(b"fine")
        assert main(["sync", "--delete", str(source), bucket.config.to_dsn()]) == 0
        out, err = capsys.readouterr()
        assert "deleted 5" in out  # a, a/b.txt, the long name, m, photos/cat.jpg
        assert "not deleted, not a valid key" in err
        assert raw_names(bucket) == sorted(
            ["x//y.txt", "/lead.txt", "photos/", "e/", "m/", "ok.txt"]
        )


@pytest.mark.s3
def test_obstore_without_s3fs_says_what_to_install(
    storage_factory: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """obstore alone cannot list a bucket holding "a//b": one line naming the fix."""
    st: Storage = storage_factory("s3-obstore")
    put_raw(st, {"x//y.txt": b"odd", "ok.txt": b"fine"})
    monkeypatch.setitem(sys.modules, "s3fs", None)  # find_spec answers None
    with pytest.raises(OSError, match=r"storage-dsn\[s3\]"):
        list(st.list())
    assert main(["ls", st.config.to_dsn()]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "obstore cannot list it" in err
