"""The storage-dsn command through its real entry point: output, exit codes, secrets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from storage_dsn.cli import main, resolve_dsn
from tests.conftest import KEY_ID, QUOTED_SECRET, SECRET

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
