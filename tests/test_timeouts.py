"""``connect_timeout``, ``read_timeout`` and ``retries`` on Azure, GCS and SFTP storages:
parsed and checked, given to each library's own settings, and holding against real
servers behind a loopback proxy that stalls (tests/servers/faults.py): a server that
accepts and never answers, or stops in the middle of an answer, fails the call with an
error naming the key instead of hanging it; a 503 that passes is retried.

Each call that could hang runs in a thread joined with a generous limit: a guard against
a hang, not a claim about speed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from storage_dsn import InvalidDSNError, Storage, open_storage, parse_dsn
from storage_dsn.backend import Timeouts
from tests.servers.azurite import ACCOUNT, ACCOUNT_KEY, QUOTED_ACCOUNT_KEY, Azurite
from tests.servers.faults import FaultProxy, TCPProxy
from tests.servers.gcs import FakeGCS
from tests.servers.sshd import SSHServer

#: How long a call may take before the test calls it a hang (not a speed limit).
HANG = 60
FAST = "connect_timeout=1&read_timeout=1&retries=0"

DSNS = {
    "az": f"az://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@blob.core.windows.net/c/p/",
    "abfs": f"abfs://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@blob.core.windows.net/c/p/",
    "az+http": f"az+http://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@127.0.0.1:10000/c/p/",
    "gs": "gs://bucket/p/?project=x",
    "gcs": "gcs://bucket/p/",
    "gs+http": "gs+http://127.0.0.1:4443/bucket/p/",
    "sftp": "sftp://user:pa%2Fss@example.org:22/srv/media/",
}


def _with(dsn: str, query: str) -> str:
    return dsn + ("&" if "?" in dsn else "?") + query


def bounded(call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` in a thread; fail the test if it is still running after :data:`HANG`
    seconds. Returns what it raised, or ``None``."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=HANG)  # a hang guard, not a speed assertion
    assert not thread.is_alive(), "the call still waits for a server that does not answer"
    return outcome[0] if outcome else None


def assert_clear(error: BaseException | None, key: str, secrets: tuple[str, ...] = ()) -> None:
    """A TimeoutError (an OSError) that names ``key`` and holds no secret."""
    assert isinstance(error, TimeoutError), repr(error)
    assert isinstance(error, OSError)
    text = f"{error} {error!r}"
    assert key in text
    for secret in secrets:
        assert secret not in text
        assert quote(secret, safe="") not in text


class TestParameters:
    @pytest.mark.parametrize("scheme", list(DSNS))
    def test_parsed_into_settings(self, scheme: str) -> None:
        """The three parameters are accepted and kept as the scheme's settings."""
        config = parse_dsn(_with(DSNS[scheme], "connect_timeout=2.5&read_timeout=7&retries=0"))
        assert config.settings["connect_timeout"] == 2.5
        assert config.settings["read_timeout"] == 7.0
        assert config.settings["retries"] == 0
        assert Timeouts.of(config) == Timeouts(connect=2.5, read=7.0, retries=0)

    @pytest.mark.parametrize("scheme", list(DSNS))
    def test_round_trip(self, scheme: str) -> None:
        """``to_dsn()`` parses back to an equal config, and other spellings differ."""
        config = parse_dsn(_with(DSNS[scheme], "read_timeout=3&retries=5"))
        assert parse_dsn(config.to_dsn()) == config
        assert config != parse_dsn(_with(DSNS[scheme], "read_timeout=4&retries=5"))

    @pytest.mark.parametrize("scheme", list(DSNS))
    def test_defaults(self, scheme: str) -> None:
        """Without them, the bounded defaults apply."""
        assert Timeouts.of(parse_dsn(DSNS[scheme])) == Timeouts()

    @pytest.mark.parametrize("scheme", list(DSNS))
    @pytest.mark.parametrize(
        "query",
        [
            "connect_timeout=0",
            "connect_timeout=-1",
            "read_timeout=abc",
            "read_timeout=3601",
            "read_timeout=nan",
            "read_timeout=inf",
            "retries=-1",
            "retries=21",
            "retries=1.5",
            "retries=",
        ],
    )
    def test_bad_values_refused(self, scheme: str, query: str) -> None:
        """Out of range or not numbers: InvalidDSNError naming the parameter."""
        name = query.partition("=")[0]
        with pytest.raises(InvalidDSNError, match=name):
            parse_dsn(_with(DSNS[scheme], query))


def _azure(host: str, container: str, query: str = "") -> Storage:
    dsn = f"az+http://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@{host}/{container}/media/"
    return open_storage(_with(dsn, query) if query else dsn)


class TestAzure:
    def test_settings_reach_the_client(self, azurite: Azurite) -> None:
        """adlfs and the SDK client it makes every request with get the timeouts and a
        retry policy with the DSN's count and short backoff."""
        storage = _azure(azurite.host, "c", "connect_timeout=2&read_timeout=3&retries=1")
        fs: Any = storage.backend.base  # type: ignore[attr-defined]
        assert fs._timeout_kwargs == {"connection_timeout": 2.0, "read_timeout": 3.0}
        client = fs.service_client
        transport = client._pipeline._transport
        assert transport.connection_config.timeout == 2.0
        assert transport.connection_config.read_timeout == 3.0
        policy = client._config.retry_policy
        assert policy.total_retries == policy.read_retries == policy.connect_retries == 1
        assert policy.status_retries == 1
        assert policy.initial_backoff + policy.increment_base**3 <= 10

    def test_defaults_reach_the_client(self, azurite: Azurite) -> None:
        """Without parameters, the defaults: not the SDK's 20 s, 60 s and 15 s backoff."""
        fs: Any = _azure(azurite.host, "c").backend.base  # type: ignore[attr-defined]
        config = fs.service_client._pipeline._transport.connection_config
        assert (config.timeout, config.read_timeout) == (5.0, 10.0)
        assert fs.service_client._config.retry_policy.total_retries == 3

    def test_account_key_still_signs(self, azurite: Azurite) -> None:
        """The client made again keeps the credential: requests are signed with the key."""
        storage = _azure(azurite.host, azurite.new_container(), "retries=0")
        storage.write_bytes("a.txt", b"x")
        assert storage.read_bytes("a.txt") == b"x"

    def test_silent_server(self, azurite: Azurite) -> None:
        """A server that accepts and never answers: a TimeoutError naming the key."""
        with TCPProxy(azurite.host, stalled=True) as proxy:
            storage = _azure(proxy.host, "c", FAST)
            for call, key in (
                (lambda: storage.read_bytes("a.txt"), "a.txt"),
                (lambda: storage.write_bytes("b.txt", b"x"), "b.txt"),
                (lambda: storage.stat("c.txt"), "c.txt"),
                (lambda: list(storage.list("d/")), "d/"),
            ):
                assert_clear(bounded(call), key, (ACCOUNT_KEY,))

    def test_stall_after_headers(self, azurite: Azurite) -> None:
        """A server that sends the headers of an object and then nothing: an error."""
        container = azurite.new_container()
        with FaultProxy(azurite.host) as proxy:
            storage = _azure(proxy.host, container, FAST)
            storage.write_bytes("a.bin", b"x" * 5000)
            proxy.inject("stall_body", method="GET", path_contains="a.bin", times=100, after=10)
            assert_clear(bounded(lambda: storage.read_bytes("a.bin")), "a.bin", (ACCOUNT_KEY,))

    def test_503_then_success(self, azurite: Azurite) -> None:
        """A 503 that passes is retried by the SDK's policy: the call succeeds."""
        container = azurite.new_container()
        with FaultProxy(azurite.host) as proxy:
            storage = _azure(proxy.host, container, "retries=2")
            put = proxy.inject("status", method="PUT", code=503, s3_code="ServerBusy")
            storage.write_bytes("a.txt", b"x")
            get = proxy.inject("status", method="GET", code=503, s3_code="ServerBusy")
            assert storage.read_bytes("a.txt") == b"x"
            assert put.hits == get.hits == 1

    @pytest.mark.parametrize("after", [0, 100], ids=["before-answer", "mid-answer"])
    def test_reset_then_success(self, azurite: Azurite, after: int) -> None:
        """A connection reset is retried by the SDK's policy: the read succeeds."""
        container = azurite.new_container()
        with FaultProxy(azurite.host) as proxy:
            storage = _azure(proxy.host, container, "retries=2")
            storage.write_bytes("a.bin", b"x" * 5000)
            rule = proxy.inject("reset", method="GET", path_contains="a.bin", after=after)
            assert storage.read_bytes("a.bin") == b"x" * 5000
            assert rule.hits == 1

    def test_503_without_retries_fails(self, azurite: Azurite) -> None:
        """``retries=0``: the first 503 is the answer, an OSError naming the key."""
        container = azurite.new_container()
        with FaultProxy(azurite.host) as proxy:
            storage = _azure(proxy.host, container, "retries=0")
            proxy.inject("status", method="PUT", code=503, s3_code="ServerBusy")
            with pytest.raises(OSError, match=r"a\.txt"):
                storage.write_bytes("a.txt", b"x")


def _gcs(host: str, bucket: str, query: str = "") -> Storage:
    dsn = f"gs+http://{host}/{bucket}/media/"
    return open_storage(_with(dsn, query) if query else dsn)


class TestGCS:
    def test_settings_reach_gcsfs(self, fake_gcs: FakeGCS) -> None:
        """gcsfs's per-request aiohttp timeout (per connection and per read, no total)
        and its retry loop's attempt count."""
        storage = _gcs(fake_gcs.host, "bkt", "connect_timeout=2&read_timeout=3&retries=1")
        fs: Any = storage.backend.base  # type: ignore[attr-defined]
        timeout = fs.requests_timeout
        assert (timeout.sock_connect, timeout.sock_read, timeout.total) == (2.0, 3.0, None)
        assert fs.retries == 2  # gcsfs counts attempts

    def test_defaults_reach_gcsfs(self, fake_gcs: FakeGCS) -> None:
        """Without parameters, the defaults, not gcsfs's six attempts without a timeout."""
        fs: Any = _gcs(fake_gcs.host, "bkt").backend.base  # type: ignore[attr-defined]
        assert (fs.requests_timeout.sock_connect, fs.requests_timeout.sock_read) == (5, 10)
        assert fs.retries == 4

    def test_google_class_bounds_its_grpc_retries(self) -> None:
        """On Google's endpoint gcsfs's extended class also asks the Storage Control API
        (gRPC): its retry deadline follows the DSN too. (Built only: no request is made.)"""
        storage = open_storage("gs://bkt/p/?option.token=anon&retries=1&read_timeout=2")
        fs: Any = storage.backend.base  # type: ignore[attr-defined]
        assert fs.retries == 2
        if hasattr(fs, "retry_config"):  # gcsfs's extended class, the default since 2025
            assert fs.retry_config["timeout"] == 2 * (5 + 2)

    def test_option_wins(self, fake_gcs: FakeGCS) -> None:
        """``option.requests_timeout`` (a number: gcsfs's total per request) is kept."""
        fs: Any = _gcs(fake_gcs.host, "bkt", "option.requests_timeout=30").backend.base  # type: ignore[attr-defined]
        assert fs.requests_timeout == 30

    def test_silent_server(self, fake_gcs: FakeGCS) -> None:
        """A server that accepts and never answers: a TimeoutError naming the key."""
        with TCPProxy(fake_gcs.host, stalled=True) as proxy:
            storage = _gcs(proxy.host, "bkt", FAST)
            for call, key in (
                (lambda: storage.read_bytes("a.txt"), "a.txt"),
                (lambda: storage.write_bytes("b.txt", b"x"), "b.txt"),
                (lambda: storage.stat("c.txt"), "c.txt"),
                (lambda: list(storage.list("d/")), "d/"),
            ):
                assert_clear(bounded(call), key)

    def test_stall_after_headers(self, fake_gcs: FakeGCS) -> None:
        """A server that sends the headers of an object and then nothing: an error."""
        bucket = fake_gcs.new_bucket()
        with FaultProxy(fake_gcs.host) as proxy:
            storage = _gcs(proxy.host, bucket, FAST)
            storage.write_bytes("a.bin", b"x" * 5000)
            proxy.inject("stall_body", method="GET", path_contains="a.bin", times=100, after=10)
            assert_clear(bounded(lambda: storage.read_bytes("a.bin")), "a.bin")

    def test_retries_then_gives_up(self, fake_gcs: FakeGCS) -> None:
        """``retries=1``: two attempts at a stalled server, then the error."""
        bucket = fake_gcs.new_bucket()
        with FaultProxy(fake_gcs.host) as proxy:
            storage = _gcs(proxy.host, bucket, "connect_timeout=1&read_timeout=1&retries=1")
            storage.write_bytes("a.txt", b"x")
            rule = proxy.inject("stall", method="GET", path_contains="a.txt", times=100)
            assert_clear(bounded(lambda: storage.read_bytes("a.txt")), "a.txt")
            assert rule.hits == 2

    def test_503_then_success(self, fake_gcs: FakeGCS) -> None:
        """A 503 that passes is retried by gcsfs's loop: the call succeeds."""
        bucket = fake_gcs.new_bucket()
        with FaultProxy(fake_gcs.host) as proxy:
            storage = _gcs(proxy.host, bucket, "retries=2")
            put = proxy.inject("status", method="POST", code=503)
            storage.write_bytes("a.txt", b"x")
            get = proxy.inject("status", method="GET", code=503)
            assert storage.read_bytes("a.txt") == b"x"
            assert put.hits == get.hits == 1

    @pytest.mark.parametrize("after", [0, 100], ids=["before-answer", "mid-answer"])
    def test_reset_then_success(self, fake_gcs: FakeGCS, after: int) -> None:
        """A connection reset is retried by gcsfs's loop: the read succeeds."""
        bucket = fake_gcs.new_bucket()
        with FaultProxy(fake_gcs.host) as proxy:
            storage = _gcs(proxy.host, bucket, "retries=2")
            storage.write_bytes("a.bin", b"x" * 5000)
            rule = proxy.inject("reset", method="GET", path_contains="a.bin", after=after)
            assert storage.read_bytes("a.bin") == b"x" * 5000
            assert rule.hits == 1

    def test_503_without_retries_fails(self, fake_gcs: FakeGCS) -> None:
        """``retries=0``: the first 503 is the answer, an OSError naming the key."""
        bucket = fake_gcs.new_bucket()
        with FaultProxy(fake_gcs.host) as proxy:
            storage = _gcs(proxy.host, bucket, "retries=0")
            rule = proxy.inject("status", method="POST", code=503, times=10)
            with pytest.raises(OSError, match=r"a\.txt"):
                storage.write_bytes("a.txt", b"x")
            assert rule.hits == 1


@pytest.fixture
def sftp_via(sshd_server: SSHServer, tmp_path: Path) -> Iterator[Callable[..., Storage]]:
    """Storages on the session's sshd, reached through a :class:`TCPProxy` (whose port
    gets the server's host key in a known_hosts file of its own)."""
    proxies: list[TCPProxy] = []

    def build(query: str, *, stalled: bool = False, drop: int = 0) -> Storage:
        proxy = TCPProxy(sshd_server.host, stalled=stalled, drop=drop)
        proxies.append(proxy)
        known = tmp_path / f"known_hosts_{len(proxies)}"
        line = sshd_server.known_hosts.read_text().split(" ", 1)[1]
        known.write_text(f"[127.0.0.1]:{proxy.host.rpartition(':')[2]} {line}")
        directory = sshd_server.new_directory()
        dsn = sshd_server.dsn(directory, known_hosts=str(known)).replace(
            sshd_server.host, proxy.host
        )
        storage = open_storage(_with(dsn, query))
        storage.proxy = proxy  # type: ignore[attr-defined]
        return storage

    yield build
    for proxy in proxies:
        proxy.close()


class TestSFTP:
    def test_settings_reach_asyncssh(self, sshd_server: SSHServer) -> None:
        """asyncssh's connect_timeout and keepalive, from the DSN."""
        dsn = sshd_server.dsn(sshd_server.new_directory())
        storage = open_storage(_with(dsn, "connect_timeout=2&read_timeout=3&retries=1"))
        options = storage.backend.storage_options()  # type: ignore[attr-defined]
        assert options["connect_timeout"] == 2.0
        assert options["keepalive_interval"] == 1.5
        assert options["keepalive_count_max"] == 1
        client: Any = storage.backend.base.client  # type: ignore[attr-defined]
        assert client._keepalive_interval == 1.5
        assert client._keepalive_count_max == 1
        storage.write_bytes("a.txt", b"x")  # and the connection works with them
        assert storage.read_bytes("a.txt") == b"x"

    def test_silent_server(self, sftp_via: Callable[..., Storage]) -> None:
        """A server that accepts and never answers (no SSH banner): a TimeoutError."""
        storage = sftp_via(FAST, stalled=True)
        error = bounded(lambda: storage.read_bytes("a.txt"))
        assert isinstance(error, TimeoutError), repr(error)
        assert "connect_timeout" in str(error)

    def test_server_stops_answering(self, sftp_via: Callable[..., Storage]) -> None:
        """A server that goes silent in the middle of a session: the keepalive finds it
        and the waiting read fails, naming the key; once it is back, the next call
        connects again."""
        storage = sftp_via(FAST)
        storage.write_bytes("a.txt", b"x")
        proxy: TCPProxy = storage.proxy  # type: ignore[attr-defined]
        proxy.stall()
        assert_clear(bounded(lambda: storage.read_bytes("a.txt")), "a.txt")
        proxy.resume()  # the server is back: the next call connects again
        assert storage.read_bytes("a.txt") == b"x"

    def test_server_stops_answering_a_write(self, sftp_via: Callable[..., Storage]) -> None:
        """The same for a write (its own SFTP channel, renamed into place)."""
        storage = sftp_via(FAST)
        storage.write_bytes("a.txt", b"x")
        storage.proxy.stall()  # type: ignore[attr-defined]
        assert_clear(bounded(lambda: storage.write_bytes("b.txt", b"y")), "b.txt")

    def test_connection_retried(self, sftp_via: Callable[..., Storage]) -> None:
        """A connection dropped before the SSH banner is tried again (``retries``)."""
        storage = sftp_via("retries=2", drop=1)
        storage.write_bytes("a.txt", b"x")
        assert storage.read_bytes("a.txt") == b"x"

    def test_connection_not_retried_with_retries_0(self, sftp_via: Callable[..., Storage]) -> None:
        """``retries=0``: the dropped connection is the answer, a ConnectionError."""
        storage = sftp_via("retries=0", drop=1)
        with pytest.raises(ConnectionError, match="sftp: cannot connect"):
            storage.write_bytes("a.txt", b"x")


@pytest.mark.parametrize("scheme", ["azure", "gcs", "sftp"])
def test_cli_says_it_in_one_line(
    scheme: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """``storage-dsn cat`` against a server that accepts and never answers: one line on
    stderr, exit 1, no secret."""
    from storage_dsn.cli import main

    if scheme == "sftp":
        storage = request.getfixturevalue("sftp_via")(FAST, stalled=True)
    else:
        server = request.getfixturevalue("azurite" if scheme == "azure" else "fake_gcs")
        proxy = TCPProxy(server.host, stalled=True)
        request.addfinalizer(proxy.close)
        make = _azure if scheme == "azure" else _gcs
        storage = make(proxy.host, "bkt", FAST)
    code: list[int] = []
    assert bounded(lambda: code.append(main(["cat", storage.config.to_dsn(), "a.txt"]))) is None
    assert code == [1]
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "TimeoutError" in err
    assert ACCOUNT_KEY not in err
