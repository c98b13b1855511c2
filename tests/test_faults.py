"""S3 through a fault proxy (tests/servers/faults.py), on both engines: what the network
does wrong reaches the caller as what it is, is retried where retrying helps, never turns
into a short success or a wrong meaning, and never hangs."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from storage_dsn import Storage, open_storage
from storage_dsn.cli import main
from tests.conftest import KEY_ID, QUOTED_SECRET, SECRET
from tests.servers.faults import FaultProxy

ENGINES = ["s3fs", "obstore"]
#: How each engine deletes one object: s3fs a DELETE, obstore a bulk POST ?delete.
DELETE = {"s3fs": "DELETE", "obstore": "POST"}
BODY = bytes(range(256)) * 1200  # 300 KiB


def storage(proxy: FaultProxy, engine: str, query: str = "") -> Storage:
    dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{proxy.host}/{proxy.bucket}/media/?engine={engine}"  # type: ignore[attr-defined]
    return open_storage(dsn + (f"&{query}" if query else ""))


@pytest.mark.parametrize("engine", ENGINES)
class TestReads:
    def test_body_cut_short_is_retried(self, fault_proxy: FaultProxy, engine: str) -> None:
        """A body that ends early without Content-Length is read again, whole."""
        st = storage(fault_proxy, engine)
        st.write_bytes("a.bin", BODY)
        rule = fault_proxy.inject("truncate", method="GET", path_contains="a.bin")
        assert st.read_bytes("a.bin") == BODY
        assert rule.hits == 1

    def test_body_always_short_fails_loudly(self, fault_proxy: FaultProxy, engine: str) -> None:
        """When every answer is cut short, the read is an error, never short data."""
        st = storage(fault_proxy, engine, "retries=1")
        st.write_bytes("a.bin", BODY)
        fault_proxy.inject("truncate", method="GET", path_contains="a.bin", times=100)
        with pytest.raises(OSError, match=r"short|body|EIO|Errno") as info:
            st.read_bytes("a.bin")
        assert not isinstance(info.value, FileNotFoundError)

    def test_streamed_read_never_short(self, fault_proxy: FaultProxy, engine: str) -> None:
        """A streamed read whose bodies end early gives the whole object (asking again
        from where it stopped) or an error: never a file that just ends."""
        st = storage(fault_proxy, engine, "retries=0")
        st.write_bytes("a.bin", BODY)
        fault_proxy.inject("truncate", method="GET", path_contains="a.bin", times=100)
        try:
            with st.open("a.bin", "rb") as f:
                data = f.read()
        except OSError as exc:
            assert not isinstance(exc, FileNotFoundError)  # noqa: PT017
        else:
            assert data == BODY

    def test_reset_is_retried(self, fault_proxy: FaultProxy, engine: str) -> None:
        """A connection reset in the middle of an answer is retried."""
        st = storage(fault_proxy, engine)
        st.write_bytes("a.bin", BODY)
        fault_proxy.inject("reset", method="GET", path_contains="a.bin", after=1000)
        assert st.read_bytes("a.bin") == BODY

    def test_slow_down_is_retried(self, fault_proxy: FaultProxy, engine: str) -> None:
        """503 SlowDown and 500 InternalError, twice each, are retried with backoff."""
        st = storage(fault_proxy, engine)
        fault_proxy.inject("status", method="PUT", times=2, code=503, s3_code="SlowDown")
        st.write_bytes("a.txt", b"x")
        fault_proxy.inject("status", method="GET", times=2, code=500, s3_code="InternalError")
        assert st.read_bytes("a.txt") == b"x"

    def test_stalled_server_fails_in_bounded_time(
        self, fault_proxy: FaultProxy, engine: str
    ) -> None:
        """A server that accepts and never answers gives an error, not a hang."""
        st = storage(fault_proxy, engine, "read_timeout=1&connect_timeout=1&retries=1")
        st.write_bytes("a.txt", b"x")
        fault_proxy.inject("stall", method="GET", times=100, seconds=20)
        outcome: list[BaseException] = []

        def read() -> None:
            try:
                st.read_bytes("a.txt")
            except BaseException as exc:
                outcome.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=60)  # a generous bound, not a speed claim: it must not hang
        assert not reader.is_alive(), "the read still waits for the stalled server"
        assert outcome
        assert isinstance(outcome[0], OSError)


@pytest.mark.parametrize("engine", ENGINES)
class TestDeletes:
    @pytest.mark.parametrize(
        ("fault", "options", "error"),
        [
            ("status", {"code": 403, "s3_code": "AccessDenied"}, PermissionError),
            ("status", {"code": 500, "s3_code": "InternalError", "times": 100}, OSError),
            ("reset", {"before": True, "times": 100}, ConnectionError),
        ],
        ids=["403", "500", "reset"],
    )
    def test_failed_delete_is_not_missing(
        self, fault_proxy: FaultProxy, engine: str, fault: str, options: Any, error: type
    ) -> None:
        """A DELETE that fails is that failure, never 'no such key'; the object stays."""
        st = storage(fault_proxy, engine, "retries=1")
        st.write_bytes("a.txt", b"x")
        fault_proxy.inject(fault, method=DELETE[engine], **options)
        with pytest.raises(error) as info:
            st.delete("a.txt")
        assert not isinstance(info.value, FileNotFoundError)
        fault_proxy.clear()
        assert st.read_bytes("a.txt") == b"x"

    def test_bulk_delete_with_per_key_errors(self, fault_proxy: FaultProxy, engine: str) -> None:
        """A 200 answer to a bulk delete that refuses the key is an error, not a delete."""
        st = storage(fault_proxy, engine, "retries=0")
        st.write_bytes("a.txt", b"x")
        fault_proxy.inject("delete_errors", method="POST", s3_code="AccessDenied", times=10)
        fault_proxy.inject("status", method="DELETE", code=403, s3_code="AccessDenied")
        with pytest.raises(PermissionError):
            st.delete("a.txt")
        fault_proxy.clear()
        assert st.read_bytes("a.txt") == b"x"

    def test_sync_counts_true(self, fault_proxy: FaultProxy, engine: str, tmp_path: Path) -> None:
        """sync --delete whose deletes fail reports them and exits 1."""
        st = storage(fault_proxy, engine, "retries=0")
        st.write_many({"keep.txt": b"k", "gone1.txt": b"1", "gone2.txt": b"2"})
        (tmp_path / "keep.txt").write_bytes(b"k")
        fault_proxy.inject("status", method="DELETE", code=500, s3_code="InternalError", times=100)
        fault_proxy.inject("status", method="POST", code=500, s3_code="InternalError", times=100)
        code = main(["sync", "--delete", str(tmp_path), st.config.to_dsn()])
        assert code == 1
        fault_proxy.clear()
        assert sorted(st.list()) == ["gone1.txt", "gone2.txt", "keep.txt"]


@pytest.mark.parametrize("engine", ENGINES)
def test_sync_of_a_cut_body_exits_1(fault_proxy: FaultProxy, engine: str, tmp_path: Path) -> None:
    """A sync whose download keeps arriving short exits 1 and leaves no half file."""
    st = storage(fault_proxy, engine, "retries=0")
    st.write_bytes("big.bin", BODY)
    st.write_bytes("small.txt", b"fine")
    fault_proxy.inject("truncate", method="GET", path_contains="big.bin", times=100)
    code = main(
        ["sync", st.config.to_dsn().replace(f"engine={engine}", f"engine={engine}"), str(tmp_path)]
    )
    assert code == 1
    assert (tmp_path / "small.txt").read_bytes() == b"fine"
    assert not (tmp_path / "big.bin").exists()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("how", ["save", "stream", "open"])
def test_exclusive_write_whose_answer_was_lost_succeeds(
    fault_proxy: FaultProxy, engine: str, how: str
) -> None:
    """The server stores an exclusive write but the answer is lost; the client's retry is
    then refused (the object exists): the writer that won is told so, not FileExistsError."""
    st = storage(fault_proxy, engine)
    rule = fault_proxy.inject("reset", method="PUT", path_contains="won.bin", after=0)
    if how == "save":
        assert st.save("won.bin", io.BytesIO(BODY), overwrite=False) == "won.bin"
    elif how == "stream":  # not seekable: hashed on the way in
        assert st.save("won.bin", _Unseekable(BODY), overwrite=False) == "won.bin"
    else:
        with st.open("won.bin", "xb") as f:
            f.write(BODY)
    assert rule.hits == 1
    assert st.read_bytes("won.bin") == BODY
    with pytest.raises(FileExistsError):  # a real conflict stays one
        st.save("won.bin", io.BytesIO(BODY[:-1] + b"!"), overwrite=False)


class _Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


@pytest.mark.parametrize("engine", ENGINES)
class TestBeginnerMistakes:
    """The refusals a new user meets first say what to do, on both engines."""

    def test_missing_bucket(self, fault_proxy: FaultProxy, engine: str) -> None:
        dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{fault_proxy.host}/no-such-bucket/m/"
        st = open_storage(f"{dsn}?engine={engine}")
        for call in (lambda: st.write_bytes("a.txt", b"x"), lambda: list(st.list())):
            with pytest.raises(FileNotFoundError, match=r"'no-such-bucket' does not exist.*mb"):
                call()

    @pytest.mark.parametrize(
        ("s3_code", "fix"),
        [
            ("RequestTimeTooSkewed", "synchronise the clock"),
            ("InvalidAccessKeyId", "check KEY"),
            ("SignatureDoesNotMatch", "percent-encoded"),
        ],
    )
    def test_refusals_with_the_fix(
        self, fault_proxy: FaultProxy, engine: str, s3_code: str, fix: str
    ) -> None:
        st = storage(fault_proxy, engine, "retries=0")
        fault_proxy.inject("status", code=403, s3_code=s3_code, times=10)
        with pytest.raises(PermissionError, match=fix) as info:
            st.read_bytes("a.txt")
        assert SECRET not in str(info.value)

    def test_cli_says_it_in_one_line(
        self, fault_proxy: FaultProxy, engine: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{fault_proxy.host}/no-such-bucket/m/"
        assert main(["ls", f"{dsn}?engine={engine}"]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        assert "does not exist" in err


#: More keys than one listing page holds (S3 answers 1,000 per page).
PAGED = {f"p/{i:04}.txt": str(i).encode() for i in range(1001)}


@pytest.mark.parametrize("engine", ENGINES)
class TestListings:
    """A listing that fails, on any page, is one line and exit 1, and a sync it belongs
    to changes nothing: --delete never acts on half a listing."""

    @pytest.mark.parametrize(
        ("fault", "options"),
        [("status", {"code": 500, "s3_code": "InternalError"}), ("reset", {"before": True})],
        ids=["500", "reset"],
    )
    def test_ls_says_it_in_one_line(
        self,
        fault_proxy: FaultProxy,
        engine: str,
        fault: str,
        options: Any,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        st = storage(fault_proxy, engine, "retries=0")
        st.write_bytes("a.txt", b"x")
        fault_proxy.inject(fault, method="GET", path_contains="list-type=2", times=100, **options)
        assert main(["ls", st.config.to_dsn()]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
        assert ": ''" not in err
        assert SECRET not in err
        assert QUOTED_SECRET not in err

    def test_failed_second_page(
        self,
        fault_proxy: FaultProxy,
        engine: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Page 2 failing once is retried and the sync completes; failing for good, the
        sync reports it (one line, counted), exits 1 and deletes nothing."""
        st = storage(fault_proxy, engine, "retries=1")
        st.write_many(PAGED)
        target = tmp_path / "copy"
        once = fault_proxy.inject(
            "status", method="GET", path_contains="continuation-token", code=500,
            s3_code="InternalError",
        )  # fmt: skip
        assert main(["sync", st.config.to_dsn(), str(target)]) == 0
        assert once.hits == 1
        assert len(list(target.rglob("*.txt"))) == len(PAGED)
        (target / "stale.txt").write_bytes(b"only here")
        capsys.readouterr()

        always = fault_proxy.inject(
            "status", method="GET", path_contains="continuation-token", code=500,
            s3_code="InternalError", times=100,
        )  # fmt: skip
        assert main(["sync", "--delete", st.config.to_dsn(), str(target)]) == 1
        out, err = capsys.readouterr()
        assert always.hits >= 1
        assert err.strip().splitlines() == [
            "storage-dsn: error: failed: listing the source: "
            + err.split("listing the source: ", 1)[1].strip()
        ]
        # The first page's keys were compared (up to date) before page 2 broke off.
        assert re.search(r"copied 0, skipped \d+, deleted 0, failed 1;", out), out
        assert len(list(target.rglob("*.txt"))) == len(PAGED) + 1  # nothing deleted

    def test_failed_destination_listing(
        self, fault_proxy: FaultProxy, engine: str, tmp_path: Path
    ) -> None:
        """A destination that cannot be listed: nothing copied, the failure counted."""
        from storage_dsn.sync import sync

        st = storage(fault_proxy, engine, "retries=0")
        local = open_storage(f"file://{tmp_path}/src/")
        local.write_bytes("a.txt", b"x")
        fault_proxy.inject(
            "reset", method="GET", path_contains="list-type=2", before=True, times=100
        )
        result = sync(local, st)
        assert not result.ok
        assert result.copied == 0
        assert len(result.errors) == 1
        assert result.errors[0].startswith("listing the destination: ConnectionError")
        fault_proxy.clear()
        assert list(st.list()) == []


def test_s3fs_retries_means_retries(fault_proxy: FaultProxy) -> None:
    """retries=N on the s3fs engine: N + 1 attempts in all (botocore's max_attempts counts
    retries, not attempts)."""
    st = storage(fault_proxy, "s3fs", "retries=1")
    rule = fault_proxy.inject("status", method="GET", code=503, s3_code="SlowDown", times=100)
    with pytest.raises(OSError, match="injected by the fault proxy"):
        st.read_bytes("missing.txt")
    assert rule.hits == 2
