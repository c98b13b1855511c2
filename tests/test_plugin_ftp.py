"""The third-party scheme of docs/extending.md, installed through its entry point only,
against a real FTP server: the storage contract, secrets, ``check`` and ``sync``."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from storage_dsn import Storage, open_storage, parse_dsn
from storage_dsn.cli import main
from storage_dsn.registry import schemes
from tests.conftest import write_then_fail
from tests.servers.ftp import FTP_PASSWORD, FTP_USER

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def ftp_dsn(ftp_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> Callable[[], str]:
    """Makes the plugin installed (its dist-info on sys.path); builds fresh FTP DSNs."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    host, _ = ftp_server

    def make() -> str:
        password = quote(FTP_PASSWORD, safe="")
        return f"ftp://{FTP_USER}:{password}@{host}/t-{uuid.uuid4().hex[:12]}/media/"

    return make


@pytest.fixture
def ftp(ftp_dsn: Callable[[], str]) -> Storage:
    return open_storage(ftp_dsn())


def test_installed_by_entry_point_only(ftp_dsn: Callable[[], str]) -> None:
    """Nobody imports the plugin: its entry point registers the scheme on first use."""
    assert "ftp" not in schemes
    config = parse_dsn(ftp_dsn())
    assert "ftp" in schemes
    assert config.options["password"] == FTP_PASSWORD  # decoded from the DSN


class TestContract:
    def test_round_trip(self, ftp: Storage) -> None:
        """Bytes and awkward keys round-trip; the listing is sorted and recursive."""
        keys = ["a.txt", "photos/cat one.jpg", "photos/2024/ü.png"]
        for i, key in enumerate(keys):
            ftp.write_bytes(key, f"data {i}".encode())
        assert [ftp.read_bytes(k) for k in keys] == [f"data {i}".encode() for i in range(3)]
        assert list(ftp.list()) == sorted(keys)
        assert list(ftp.list("photos/")) == ["photos/2024/ü.png", "photos/cat one.jpg"]
        assert ftp.stat("photos/cat one.jpg").size == len(b"data 1")

    def test_atomic_and_exclusive(self, ftp: Storage) -> None:
        """A failed write leaves nothing; overwrite=False refuses a taken key."""
        with pytest.raises(RuntimeError):
            write_then_fail(ftp, "half.bin", b"x" * 100_000)
        assert not ftp.exists("half.bin")
        assert list(ftp.list()) == []  # no temporary file shows either
        ftp.save("one.txt", io.BytesIO(b"first"), overwrite=False)
        with pytest.raises(FileExistsError):
            ftp.save("one.txt", io.BytesIO(b"second"), overwrite=False)
        assert ftp.read_bytes("one.txt") == b"first"

    def test_missing_and_delete(self, ftp: Storage) -> None:
        """A missing key is FileNotFoundError on read, stat and delete."""
        for call in (ftp.read_bytes, ftp.stat, ftp.delete):
            with pytest.raises(FileNotFoundError):
                call("nope.txt")
        ftp.write_bytes("gone.txt", b"x")
        ftp.delete("gone.txt")
        assert not ftp.exists("gone.txt")


def test_secret_never_shown(ftp: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    """The password is in no repr, str or check output; check shows the scheme's rows."""
    assert FTP_PASSWORD not in repr(ftp) + str(ftp.config) + repr(ftp.config)
    assert main(["check", "--connect", ftp.config.to_dsn()]) == 0
    out = capsys.readouterr()
    assert FTP_PASSWORD not in out.out + out.err
    assert quote(FTP_PASSWORD, safe="") not in out.out + out.err
    assert f"user         {FTP_USER}" in out.out
    assert "TLS          no" in out.out
    assert "delete       ok" in out.out


def test_sync_round_trip(ftp: Storage, tmp_path: Path) -> None:
    """storage-dsn sync of a local tree to FTP and back gives the same tree."""
    src = tmp_path / "src"
    for name, data in {"a.txt": b"a", "d/b.bin": b"b" * 70_000, "d/e/c.txt": b"c"}.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    back = tmp_path / "back"
    assert main(["sync", str(src), ftp.config.to_dsn()]) == 0
    assert main(["sync", ftp.config.to_dsn(), str(back)]) == 0
    files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    assert sorted(p.relative_to(back) for p in back.rglob("*") if p.is_file()) == files
    assert all((src / f).read_bytes() == (back / f).read_bytes() for f in files)


def test_extending_page_shows_this_plugin() -> None:
    """docs/extending.md shows the plugin module as it is tested here, byte for byte."""
    page = (Path(__file__).parents[1] / "docs" / "extending.md").read_text()
    module = (PLUGINS / "storage_dsn_ftp" / "__init__.py").read_text()
    assert f"```python\n{module}```" in page
    entry_points = (PLUGINS / "storage_dsn_ftp-1.0.dist-info" / "entry_points.txt").read_text()
    assert entry_points.splitlines()[1].replace(" = ", ' = "') + '"' in page
