"""The storage-dsn command through its real entry point: output, exit codes, secrets."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from storage_dsn import open_storage
from storage_dsn.cli import main, resolve_dsn
from storage_dsn.cli.output import BarProgress, Output, progress, size
from tests.conftest import KEY_ID, QUOTED_SECRET, SECRET
from tests.servers.faults import FaultProxy

GOOD = f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-central-1.amazonaws.com/media/?domain=cdn.example.com"


def run(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storage_dsn", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def no_secret(result: subprocess.CompletedProcess[str]) -> None:
    for stream in (result.stdout, result.stderr):
        assert SECRET not in stream
        assert QUOTED_SECRET not in stream


class TestCheck:
    def test_table(self) -> None:
        """check prints the redacted config as a readable table."""
        r = run("check", GOOD)
        assert r.returncode == 0
        no_secret(r)
        for expected in (
            "bucket",
            "eu-central-1",
            "https://s3.eu-central-1.amazonaws.com",
            "https://cdn.example.com/media/",
            "***",
        ):
            assert expected in r.stdout

    def test_engine_shown(self) -> None:
        """check names the engine's package."""
        r = run("check", GOOD.replace("?domain", "?engine=obstore&domain"))
        assert r.returncode == 0
        assert "obstore (s3), installed" in r.stdout

    @pytest.mark.usefixtures("without_gcsfs")
    def test_missing_extra_named(self, capsys: pytest.CaptureFixture[str]) -> None:
        """check says which extra a scheme needs when it is not installed."""
        assert main(["check", "gs://bucket/prefix/"]) == 0
        assert 'pip install "storage-dsn[gcs]"' in capsys.readouterr().out

    def test_file_root_state(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """check says whether a file: root exists; a missing one is created by the first
        write (a typo'd path is visible before anything is written there)."""
        missing = tmp_path / "not" / "yet"
        assert main(["check", f"file://{missing}/"]) == 0
        assert "does not exist yet: the first write creates it" in capsys.readouterr().out
        assert not missing.exists()
        assert main(["check", "--connect", f"file://{missing}/"]) == 0
        assert missing.is_dir()
        assert main(["check", f"file://{missing}/"]) == 0
        assert "on disk      exists" in capsys.readouterr().out
        (tmp_path / "f").write_bytes(b"")
        assert main(["check", f"file://{tmp_path}/f/"]) == 0
        assert "NOT A DIRECTORY" in capsys.readouterr().out

    def test_default_env(self) -> None:
        """check without a DSN reads DEFAULT_STORAGE_DSN."""
        r = run("check", env={"DEFAULT_STORAGE_DSN": "memory://x/?url=%2Fm%2F"})
        assert r.returncode == 0
        assert "memory" in r.stdout

    @pytest.mark.parametrize(
        "dsn",
        [
            f"s3://{KEY_ID}:{SECRET}@bucket.s3.amazonaws.com/",  # unquoted / and +
            f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.amazonaws.com/?colour=red",
            f"ftp://{KEY_ID}:{QUOTED_SECRET}@host/",
            "not a dsn",
        ],
    )
    def test_bad_dsn(self, dsn: str) -> None:
        """A bad DSN is exit 2 with one line of reason and no secret."""
        r = run("check", dsn)
        assert r.returncode == 2
        assert r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1
        assert r.stderr.startswith("storage-dsn: error: ")
        no_secret(r)

    def test_no_dsn_at_all(self) -> None:
        """No argument and no DEFAULT_STORAGE_DSN is a usage error."""
        env = {k: v for k, v in os.environ.items() if k != "DEFAULT_STORAGE_DSN"}
        r = subprocess.run(
            [sys.executable, "-m", "storage_dsn", "check"], capture_output=True, text=True, env=env
        )
        assert r.returncode == 2

    @pytest.mark.s3
    def test_connect(self, storage_factory: Any) -> None:
        """--connect writes, reads and deletes a probe, reporting each step."""
        storage = storage_factory("s3-server")
        r = run("check", "--connect", "MEDIA", env={"MEDIA": storage.config.to_dsn()})
        assert r.returncode == 0, r.stderr
        for step in ("write", "read", "delete"):
            assert f"{step}" in r.stdout
        assert r.stdout.count(" ok (") == 3
        assert list(storage.list()) == []
        no_secret(r)

    @pytest.mark.s3
    def test_connect_failure(self, moto_server: str) -> None:
        """--connect to a missing bucket fails at the write step, exit 1, no secret."""
        host = moto_server.removeprefix("http://")
        dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{host}/no-such-bucket-here/"
        r = run("check", "--connect", dsn)
        assert r.returncode == 1
        assert "FAILED" in r.stdout
        no_secret(r)

    def test_repair_sweeps_temp_files(self, tmp_path: Path) -> None:
        """--connect --repair removes old temp files of killed writers and says how many;
        a fresh one and other dot-files are kept."""
        root = tmp_path / "media"
        (root / "d").mkdir(parents=True)
        old = root / "d" / ".storage-dsn-0123456789abcdef.tmp"
        fresh = root / ".storage-dsn-fedcba9876543210.tmp"
        dot = root / "d" / ".keep"
        for path in (old, fresh, dot):
            path.write_bytes(b"half")
        past = time.time() - 7200
        for path in (old, dot):
            os.utime(path, (past, past))
        r = run("check", "--connect", "--repair", str(root))
        assert r.returncode == 0, r.stderr
        assert "repair       removed 1 temporary file older than 1 h" in r.stdout
        assert not old.exists()
        assert fresh.exists()
        assert dot.exists()
        r = run("check", "--connect", "--repair", str(root))
        assert "removed 0 temporary files" in r.stdout

    def test_repair_needs_connect(self, tmp_path: Path) -> None:
        """--repair alone is a usage error: check without --connect does no I/O."""
        r = run("check", "--repair", str(tmp_path))
        assert r.returncode == 2
        assert "--connect" in r.stderr

    @pytest.mark.s3
    def test_repair_on_s3(self, storage_factory: Any) -> None:
        """Object stores write no temp files: nothing to remove, exit 0."""
        storage = storage_factory("s3-server")
        r = run("check", "--connect", "--repair", storage.config.to_dsn())
        assert r.returncode == 0, r.stderr
        assert "removed 0 temporary files" in r.stdout
        no_secret(r)


class TestObjects:
    def test_put_ls_cat_url_rm(self, tmp_path: Path) -> None:
        """put, ls (--long), cat, url and rm on a local storage."""
        dsn = f"file://{tmp_path}/m/?url=%2Fmedia%2F"
        source = tmp_path / "in.txt"
        source.write_bytes(b"hello file")
        assert run("put", dsn, "a/b c.txt", str(source)).returncode == 0
        assert run("put", dsn, "from-stdin.txt", "-", stdin=b"piped").returncode == 0
        assert run("ls", dsn).stdout.splitlines() == ["a/b c.txt", "from-stdin.txt"]
        assert run("ls", dsn, "a/").stdout.splitlines() == ["a/b c.txt"]
        long = run("ls", "--long", dsn).stdout.splitlines()
        assert long[0].split()[0] == "10"
        assert long[0].endswith("a/b c.txt")
        assert run("cat", dsn, "from-stdin.txt").stdout == "piped"
        assert run("url", dsn, "a/b c.txt").stdout.strip() == "/media/a/b%20c.txt"
        r = run("rm", dsn, "a/b c.txt", "missing.txt")
        assert r.returncode == 1
        assert "no such key: missing.txt" in r.stderr
        assert run("ls", dsn).stdout.splitlines() == ["from-stdin.txt"]

    def test_cat_missing(self, tmp_path: Path) -> None:
        """cat of a missing key is exit 1 with a message."""
        r = run("cat", f"file://{tmp_path}/m/", "nope.txt")
        assert r.returncode == 1
        assert "FileNotFoundError" in r.stderr

    def test_bad_key(self, tmp_path: Path) -> None:
        """An unsafe key is a usage error, exit 2."""
        r = run("cat", f"file://{tmp_path}/m/", "../etc/passwd")
        assert r.returncode == 2
        assert "key" in r.stderr

    def test_presigned_url(self) -> None:
        """url on a private bucket prints a presigned URL (a signature, not the secret)."""
        dsn = f"s3://{KEY_ID}:{QUOTED_SECRET}@b.s3.eu-west-1.amazonaws.com/?qs_auth=true"
        r = run("url", dsn, "a.jpg", "--expires", "60")
        assert r.returncode == 0
        assert "X-Amz-Expires=60" in r.stdout
        no_secret(r)

    def test_usage(self) -> None:
        """Unknown commands and missing arguments are exit 2."""
        assert run("frobnicate").returncode == 2
        assert run("sync", "only-one").returncode == 2


class TestResolve:
    def test_forms(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A DSN, a variable name and a path all name a storage."""
        monkeypatch.chdir(tmp_path)
        env = {"MEDIA": "memory://m/"}
        assert resolve_dsn("s3://b.s3.amazonaws.com/", env) == "s3://b.s3.amazonaws.com/"
        assert resolve_dsn("MEDIA", env) == "memory://m/"
        assert resolve_dsn("./data/media", env) == f"file://{tmp_path}/data/media/"
        assert resolve_dsn(str(tmp_path), env) == f"file://{tmp_path}/"
        with pytest.raises(Exception, match="not a DSN"):
            resolve_dsn("UNSET_VARIABLE", env)

    def test_console_script(self) -> None:
        """The storage-dsn script is installed beside the interpreter."""
        script = Path(sys.executable).parent / "storage-dsn"
        assert script.exists()
        r = subprocess.run([str(script), "--version"], capture_output=True, text=True)
        assert r.returncode == 0
        assert r.stdout.startswith("storage-dsn ")

    def test_in_process_main(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """main() returns the exit code instead of exiting."""
        assert main(["ls", f"file://{tmp_path}/"]) == 0
        assert main(["check", "bogus://x/"]) == 2
        assert "unknown storage scheme" in capsys.readouterr().err


class TestHostileUse:
    """What a hurried or unlucky user types, and backends that are down."""

    @pytest.mark.parametrize(
        "args",
        [
            [GOOD, "ls"],  # the DSN before the command
            ["ls", GOOD, "prefix", "one-too-many"],
            ["sync", "./a", "./b", "--jobs", GOOD],
            ["url", GOOD],  # a missing argument
        ],
        ids=["dsn-as-command", "extra-argument", "dsn-as-jobs", "missing-argument"],
    )
    def test_usage_errors_hide_the_secret(self, args: list[str]) -> None:
        """argparse's usage errors never print a DSN's secret; they exit 2."""
        r = run(*args)
        assert r.returncode == 2
        assert "error:" in r.stderr
        no_secret(r)

    @pytest.mark.parametrize(
        ("arg", "says"),
        [
            ("s3//bucket/x", "missing its ':'"),
            ("sftp//host/p", "missing its ':'"),
            ('"file:///srv/media/"', "quotes"),
            ("'s3://b.s3.amazonaws.com/'", "quotes"),
        ],
    )
    def test_typos_are_errors(self, tmp_path: Path, arg: str, says: str) -> None:
        """A DSN missing its colon, or in quotes, is an error, not an empty local path."""
        r = subprocess.run(
            [sys.executable, "-m", "storage_dsn", "ls", arg],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert r.returncode == 2
        assert says in r.stderr
        assert not list(tmp_path.iterdir())

    def test_quoted_dsn_in_environment(self) -> None:
        """A DSN kept with its .env quotes is named as such."""
        r = run("check", "MEDIA", env={"MEDIA": '"s3://b.s3.amazonaws.com/"'})
        assert r.returncode == 2
        assert "quotes" in r.stderr

    def test_unreachable_backend_is_one_line(self) -> None:
        """A refused connection: one line on stderr, exit 1, no traceback, no secret."""
        from tests.servers import free_port

        dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@127.0.0.1:{free_port()}/b/?engine=obstore"
        for args in (["ls", dsn], ["cat", dsn, "a.txt"], ["check", "--connect", dsn]):
            r = run(*args)
            assert r.returncode == 1, args
            assert "Traceback" not in r.stderr
            no_secret(r)
            assert len((r.stdout + r.stderr).strip().splitlines()) <= 12  # check: its table
            assert len(r.stderr.strip().splitlines()) <= 1

    def test_control_characters_never_printed_raw(self, tmp_path: Path) -> None:
        """A newline or escape in a listed name is shown escaped, never as a new line."""
        (tmp_path / "good.txt").write_bytes(b"x")
        (tmp_path / "evil\nFAKE LINE\x1b[2J.txt").write_bytes(b"x")
        r = run("ls", str(tmp_path))
        assert r.returncode == 0
        assert "FAKE LINE" not in r.stdout.splitlines()
        assert "\x1b" not in r.stdout
        assert "good.txt" in r.stdout.splitlines()

    @pytest.mark.parametrize("expires", ["0", "-5", "604801", str(10**30)])
    def test_url_expires_out_of_range(self, expires: str) -> None:
        """A presigned lifetime S3 would refuse is a usage error, exit 2."""
        r = run(
            "url", GOOD.replace("?domain", "?qs_auth=true&domain"), "a.txt", "--expires", expires
        )
        assert r.returncode == 2
        assert "expires" in r.stderr
        no_secret(r)


class TestSyncExclude:
    def test_name_in_every_directory(self, tmp_path: Path) -> None:
        """`sync --exclude .DS_Store` leaves out the Finder's files in every directory."""
        src = tmp_path / "src"
        for name in ("a.jpg", ".DS_Store", "photos/.DS_Store", "photos/b.jpg"):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes(b"x")
        r = run("sync", "--exclude", ".DS_Store", str(src), str(tmp_path / "dst"))
        assert r.returncode == 0, r.stderr
        assert run("ls", str(tmp_path / "dst")).stdout.splitlines() == ["a.jpg", "photos/b.jpg"]

    def test_empty_pattern_is_usage_error(self, tmp_path: Path) -> None:
        """An empty --exclude pattern is exit 2, before anything is copied."""
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "a.txt").write_bytes(b"x")
        r = run("sync", "--exclude", "/", str(tmp_path / "src"), str(tmp_path / "dst"))
        assert r.returncode == 2
        assert "--exclude" in r.stderr
        assert not (tmp_path / "dst").exists()


def run_on_terminal(*args: str, answer: str) -> subprocess.CompletedProcess[str]:
    """Run the command with a pseudo-terminal as standard input, ``answer`` typed into it."""
    import pty

    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())
        return subprocess.run(
            [sys.executable, "-m", "storage_dsn", *args],
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(controller)


class TestRemoveRecursive:
    @pytest.fixture
    def dsn(self, tmp_path: Path) -> str:
        root = tmp_path / "m"
        for key in ("photos/a.jpg", "photos/2024/b.jpg", "photos2/c.jpg", "other.txt"):
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(b"x")
        return f"file://{root}/"

    def test_yes_deletes_the_directory(self, dsn: str) -> None:
        """rm -r --yes deletes every key under the prefix as a directory, not photos2/."""
        r = run("rm", "-r", "--yes", dsn, "photos")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "deleted 2 keys, failed 0"
        assert run("ls", dsn).stdout.splitlines() == ["other.txt", "photos2/c.jpg"]

    def test_needs_yes_without_terminal(self, dsn: str) -> None:
        """Without a terminal to confirm on, --yes is required: exit 2, nothing deleted."""
        r = run("rm", "--recursive", dsn, "photos/")
        assert r.returncode == 2
        assert "--yes" in r.stderr
        assert len(run("ls", dsn).stdout.splitlines()) == 4

    def test_terminal_confirms(self, dsn: str) -> None:
        """On a terminal, the count is shown and a yes deletes."""
        r = run_on_terminal("rm", "-r", dsn, "photos/", answer="y\n")
        assert r.returncode == 0, r.stderr
        assert "delete 2 keys under 'photos/' in file://" in r.stderr
        assert "[y/N]" in r.stderr
        assert "deleted 2 keys" in r.stdout
        assert run("ls", dsn).stdout.splitlines() == ["other.txt", "photos2/c.jpg"]

    def test_terminal_declines(self, dsn: str) -> None:
        """Anything but yes deletes nothing, exit 1."""
        r = run_on_terminal("rm", "-r", dsn, "photos/", answer="\n")
        assert r.returncode == 1
        assert "nothing deleted" in r.stderr
        assert len(run("ls", dsn).stdout.splitlines()) == 4

    def test_nothing_under_prefix(self, dsn: str) -> None:
        """A prefix with no keys (a typo) is exit 1 with a message."""
        r = run("rm", "-r", "-y", dsn, "photo")
        assert r.returncode == 1
        assert "no keys under 'photo'" in r.stderr

    @pytest.mark.s3
    def test_failures_listed(
        self, fault_proxy: FaultProxy, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Keys the server refuses to delete are listed; the rest go; exit 1."""
        dsn = (
            f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{fault_proxy.host}/"
            f"{fault_proxy.bucket}/m/?engine=s3fs&retries=0"  # type: ignore[attr-defined]
        )
        storage = open_storage(dsn)
        storage.write_many({"p/a.txt": b"a", "p/b.txt": b"b", "p/c.txt": b"c"})
        fault_proxy.inject(
            "status",
            method="DELETE",
            path_contains="b.txt",
            code=403,
            s3_code="AccessDenied",
            times=100,
        )
        assert main(["rm", "-r", "--yes", dsn, "p/"]) == 1
        captured = capsys.readouterr()
        assert "failed: p/b.txt: PermissionError" in captured.err
        assert "deleted 2 keys, failed 1" in captured.out
        assert QUOTED_SECRET not in captured.out + captured.err
        fault_proxy.clear()
        assert list(storage.list()) == ["p/b.txt"]


class TestSizes:
    @pytest.mark.parametrize(
        ("n", "text"),
        [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (1024 * 1024 - 1, "1.0 MiB"),  # never "1024.0 KiB"
            (3 * 2**20 // 2, "1.5 MiB"),
            (5 * 2**30, "5.0 GiB"),
            (3 * 2**40, "3.0 TiB"),
        ],
    )
    def test_binary_units(self, n: int, text: str) -> None:
        """Sizes read in binary units, switching up before a unit reaches 1024."""
        assert size(n) == text

    def test_ls_long_human_and_bytes(self, tmp_path: Path) -> None:
        """ls --long shows 1.5 MiB; --bytes the exact number."""
        (tmp_path / "big.bin").write_bytes(b"\0" * (3 * 2**20 // 2))
        assert run("ls", "--long", str(tmp_path)).stdout.split()[:2] == ["1.5", "MiB"]
        assert run("ls", "-l", "--bytes", str(tmp_path)).stdout.split()[0] == "1572864"

    def test_progress_bar_in_binary_units(self) -> None:
        """The terminal bar counts in KiB/MiB as the summaries do, never tqdm's MB."""

        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        terminal = Terminal()
        bar = progress(Output(io.StringIO(), terminal))
        assert isinstance(bar, BarProgress)
        bar.start(2, 3 * 2**20)
        bar.copied("a", 2**20)
        bar.copied("b", 2 * 2**20)
        bar.close()
        drawn = terminal.getvalue()
        assert "3.0 MiB/3.0 MiB" in drawn
        assert "2/2 objects" in drawn
        assert "MB" not in drawn
        assert "kB" not in drawn


class TestJSON:
    def test_ls(self, tmp_path: Path) -> None:
        """ls --json: one object per key (JSON Lines) with key, size, mtime and etag."""
        (tmp_path / "a b").mkdir()
        (tmp_path / "a b" / "ü.txt").write_bytes(b"hello")
        (tmp_path / "evil\x1b[2J.txt").write_bytes(b"")
        r = run("ls", "--json", str(tmp_path))
        assert r.returncode == 0
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        assert [row["key"] for row in rows] == ["a b/ü.txt", "evil\x1b[2J.txt"]
        assert rows[0]["size"] == 5
        assert rows[0]["etag"] is None
        assert rows[0]["mtime"].endswith("+00:00")
        assert "\x1b" not in r.stdout

    @pytest.mark.s3
    def test_ls_s3_etag(self, storage_factory: Any) -> None:
        """On S3, ls --json carries each object's ETag and time."""
        storage = storage_factory("s3-server")
        storage.write_bytes("a.txt", b"hello")
        r = run("ls", "--json", "MEDIA", env={"MEDIA": storage.config.to_dsn()})
        assert r.returncode == 0, r.stderr
        row = json.loads(r.stdout)
        assert row["key"] == "a.txt"
        assert row["etag"] == "5d41402abc4b2a76b9719d911017c592"  # MD5 of a single PUT
        assert row["mtime"]
        no_secret(r)

    def test_check_hides_the_secret(self) -> None:
        """check --json: the redacted config, never the secret."""
        r = run("check", "--json", GOOD)
        assert r.returncode == 0
        report = json.loads(r.stdout)
        assert report["scheme"] == "s3"
        assert report["root"] == "bucket/media"
        assert report["public_url"] == "https://cdn.example.com/media/"
        assert report["details"]["region"] == "eu-central-1"
        assert "***" in report["dsn"]
        assert "connect" not in report
        no_secret(r)

    def test_check_connect(self, tmp_path: Path) -> None:
        """check --json --connect adds each probe step's outcome."""
        r = run("check", "--json", "--connect", str(tmp_path))
        assert r.returncode == 0
        steps = json.loads(r.stdout)["connect"]
        assert [(s["step"], s["ok"]) for s in steps] == [
            ("write", True),
            ("read", True),
            ("delete", True),
        ]

    @pytest.mark.s3
    def test_check_connect_failure(self, moto_server: str) -> None:
        """A failed probe is in the JSON, with its error and no secret; exit 1."""
        host = moto_server.removeprefix("http://")
        r = run("check", "--json", "--connect", f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{host}/nope/")
        assert r.returncode == 1
        steps = json.loads(r.stdout)["connect"]
        assert steps[0]["step"] == "write"
        assert steps[0]["ok"] is False
        assert steps[0]["error"]
        no_secret(r)

    def test_sync(self, tmp_path: Path) -> None:
        """sync --json prints no progress, only the summary as one object."""
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "a.txt").write_bytes(b"abc")
        dry = run("sync", "--json", "--dry-run", str(tmp_path / "s"), str(tmp_path / "d"))
        plan = json.loads(dry.stdout)
        assert plan["dry_run"] is True
        assert plan["copy"] == [{"key": "a.txt", "size": 3}]
        r = run("sync", "--json", str(tmp_path / "s"), str(tmp_path / "d"))
        assert r.returncode == 0
        assert len(r.stdout.splitlines()) == 1
        summary = json.loads(r.stdout)
        assert summary["copied"] == 1
        assert summary["bytes"] == 3
        assert summary["failed"] == {}
        assert summary["destination"] == f"file://{tmp_path}/d/"
        assert r.stderr == ""

    @pytest.mark.s3
    def test_sync_to_s3_hides_the_secret(self, storage_factory: Any, tmp_path: Path) -> None:
        """The JSON summary names both storages redacted."""
        dst = storage_factory("s3-server")
        (tmp_path / "a.txt").write_bytes(b"x")
        r = run("sync", "--json", str(tmp_path), "MEDIA", env={"MEDIA": dst.config.to_dsn()})
        assert r.returncode == 0, r.stderr
        assert "***" in json.loads(r.stdout)["destination"]
        no_secret(r)


def complete_in(shell: str, program: str, tmp_path: Path) -> list[str]:
    """Run ``program`` in ``shell`` with the printed completion script in script.sh."""
    script = run("completion", shell)
    assert script.returncode == 0, script.stderr
    (tmp_path / "script.sh").write_text(script.stdout)
    (tmp_path / "media").mkdir()
    r = subprocess.run(
        [shell, "-c", program],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MEDIA_DSN": "memory://m/", "OTHER": "x"},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


#: A zsh with stand-ins for the completion system's functions, printing what they offer.
ZSH_STUBS = (
    "compdef() { :; }; _describe() { local n=${@[-1]}; print -l -- ${(P)n%%:*} }; "
    "compadd() { if [[ $1 == -a ]]; then print -l -- ${(P)2}; else shift; print -l -- $@; fi }; "
    "_files() { print -l -- *(N) }; source ./script.sh; "
)


class TestCompletion:
    @pytest.mark.parametrize(
        ("words", "expected", "absent"),
        [
            ("storage-dsn sy", ["sync"], ["ls"]),
            ("storage-dsn ", ["check", "completion", "rm"], ["--json"]),
            ("storage-dsn --v", ["--version"], ["check"]),
            ("storage-dsn sync --d", ["--dry-run", "--delete"], ["--json"]),
            ("storage-dsn ls --", ["--long", "--bytes", "--json"], ["--dry-run"]),
            ("storage-dsn rm -", ["-r", "--recursive", "--yes"], []),
            ("storage-dsn completion ", ["bash", "zsh", "fish"], ["media"]),
            ("storage-dsn ls ", ["MEDIA_DSN", "media"], ["OTHER", "check"]),
            ("storage-dsn sync --jobs ", [], ["media", "MEDIA_DSN"]),
        ],
    )
    @pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
    def test_offers(
        self, tmp_path: Path, shell: str, words: str, expected: list[str], absent: list[str]
    ) -> None:
        """Each shell offers commands, a command's options, choices, and for storages,
        paths and the DSN variables; nothing after an option that takes a value."""
        if shutil.which(shell) is None:
            pytest.skip(f"{shell} is not installed")
        parts = words.split(" ")
        if shell == "bash":
            program = (
                "source ./script.sh; "
                f"COMP_WORDS=({' '.join(repr(p) for p in parts)}); "
                f"COMP_CWORD={len(parts) - 1}; _storage_dsn; "
                'printf "%s\\n" "${COMPREPLY[@]}"'
            )
        elif shell == "zsh":
            program = (
                ZSH_STUBS + f"words=({' '.join(repr(p) for p in parts)}); "
                f"CURRENT={len(parts)}; PREFIX={parts[-1]!r}; _storage_dsn"
            )
        else:
            program = f"source ./script.sh; complete -C {words!r}"
        offered = [w.rstrip("/") for w in complete_in(shell, program, tmp_path)]
        if shell == "zsh":  # what the completion system does with what is offered
            offered = [w for w in offered if w.startswith(parts[-1])]
        for word in expected:
            assert word in offered
        for word in absent:
            assert word not in offered

    def test_follows_the_parser(self) -> None:
        """Every command and option of the parser is in every script."""
        for shell in ("bash", "zsh", "fish"):
            text = run("completion", shell).stdout
            for word in ("check", "sync", "completion", "recursive", "exclude", "bytes"):
                assert word in text, (shell, word)

    def test_unknown_shell(self) -> None:
        """Only bash, zsh and fish: exit 2."""
        assert run("completion", "tcsh").returncode == 2


class TestStartUp:
    """A small ``cat`` pays only for what it uses: the start-up is on its clock."""

    # Imported by nothing a cat of an S3 object through obstore needs.
    UNUSED = (
        "storage_dsn.sync",
        "storage_dsn.cli.sync",
        "storage_dsn.cli.metadata",
        "storage_dsn.cli.public",
        "storage_dsn.metadata",
        "storage_dsn.schemes.azure",
        "storage_dsn.schemes.gcs",
        "storage_dsn.schemes.sftp",
        "storage_dsn.schemes.local",
        "storage_dsn.schemes.s3.presign",
        "storage_dsn.schemes.s3.post",
        "storage_dsn.schemes.s3.s3fs_engine",
        "botocore",
        "s3fs",
        "fsspec",
        "asyncio",
        "concurrent.futures",
        "hashlib",
        "secrets",
        "tempfile",
        "shutil",
        "json",
        "urllib.request",
    )

    def test_cat_imports_only_what_it_uses(self, moto_server: str, tmp_path: Path) -> None:
        """Run as the program runs, the cat prints the object and imports none of
        :attr:`UNUSED` (each costs milliseconds of every small command)."""
        from tests.servers.moto import make_bucket

        bucket = make_bucket(moto_server)
        host = moto_server.removeprefix("http://")
        dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{host}/{bucket}/?engine=obstore"
        assert run("put", dsn, "one.bin", "-", stdin=b"x" * 1024).returncode == 0
        script = (
            "import runpy, sys\n"
            "try:\n"
            "    runpy.run_module('storage_dsn', run_name='__main__')\n"
            "except SystemExit as exit:\n"
            "    code = exit.code\n"
            "sys.stdout.flush()\n"
            "print(code, *sorted(sys.modules), file=sys.stderr)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script, "cat", dsn, "one.bin"],
            capture_output=True,
            timeout=120,
        )
        assert result.stdout == b"x" * 1024
        code, *modules = result.stderr.decode().splitlines()[-1].split()  # after any warning
        assert code == "0"
        loaded = {m for m in self.UNUSED if m in modules}
        assert not loaded, f"a small cat imported {sorted(loaded)}"
        assert "storage_dsn.schemes.s3.obstore_engine" in modules  # it did the work
