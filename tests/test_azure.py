"""Azure Blob Storage against Azurite: the DSN forms, SAS tokens, names, errors and logs
that the storage suite (where Azure is the kind ``azure``) does not cover."""

from __future__ import annotations

import base64
import io
import logging
import os
import traceback
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest

from storage_dsn import Storage, open_storage, parse_dsn
from storage_dsn.dsn import secret_values
from storage_dsn.registry import get_scheme
from tests.servers.azurite import ACCOUNT, ACCOUNT_KEY, QUOTED_ACCOUNT_KEY, Azurite, blob_service
from tests.test_storage import KEYS


def _sas(permission: str) -> str:
    """An account SAS for the development account, as Divio issues it: base64."""
    from azure.storage.blob import ResourceTypes, generate_account_sas

    token = generate_account_sas(
        ACCOUNT,
        ACCOUNT_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=permission,
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    return base64.b64encode(token.encode()).decode()


def _no_secret(exc: BaseException, secrets: list[str]) -> None:
    """``exc`` is one readable line, and no secret is in it, its repr or its traceback."""
    message = str(exc)
    assert "\n" not in message
    assert len(message) < 300
    shown = message + repr(exc) + "".join(traceback.format_exception(exc))
    for secret in secrets:
        assert secret not in shown
        assert quote(secret, safe="") not in shown


def _blob_names(server: Azurite, container: str) -> list[str]:
    client = blob_service(server.account_url).get_container_client(container)
    return sorted(blob.name for blob in client.list_blobs())


class TestDSNForms:
    def test_endpoint_url(self, azurite: Azurite) -> None:
        """az:// with endpoint_url= reaches that account URL; public URLs follow it."""
        container = azurite.new_container()
        blob_service(azurite.account_url).get_container_client(
            container
        ).set_container_access_policy(signed_identifiers={}, public_access="blob")
        endpoint = quote(azurite.account_url, safe="")
        storage = open_storage(
            f"az://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@blob.core.windows.net/{container}/m/"
            f"?endpoint_url={endpoint}"
        )
        storage.write_bytes("a b/ü.txt", b"public")
        url = storage.url("a b/ü.txt")
        assert url == f"{azurite.account_url}/{container}/m/a%20b/%C3%BC.txt"
        with urllib.request.urlopen(url) as response:
            assert response.read() == b"public"
            assert response.headers["Content-Type"] == "text/plain"

    def test_connection_string_option(self, azurite: Azurite) -> None:
        """option.connection_string is used as given, and masked like the key."""
        container = azurite.new_container()
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={azurite.account_url};"
        )
        storage = open_storage(
            f"az+http://{ACCOUNT}@{azurite.host}/{container}/"
            f"?option.connection_string={quote(connection, safe='')}"
        )
        storage.write_bytes("k.txt", b"via the connection string")
        assert list(storage.list()) == ["k.txt"]
        for text in (repr(storage), str(storage.config), storage.config.redacted()):
            assert ACCOUNT_KEY not in text
            assert QUOTED_ACCOUNT_KEY not in text
        assert ACCOUNT_KEY in secret_values(storage.config)

    def test_base64_sas(self, azurite: Azurite) -> None:
        """A base64 SAS token as the password reads, writes, lists and deletes."""
        container = azurite.new_container()
        token = _sas("rwdlac")
        storage = open_storage(f"az+http://{ACCOUNT}:{quote(token)}@{azurite.host}/{container}/")
        assert "sas_token" in storage.config.options
        storage.write_bytes("s/a.png", b"x")
        assert storage.read_bytes("s/a.png") == b"x"
        assert storage.stat("s/a.png").content_type == "image/png"
        assert list(storage.list()) == ["s/a.png"]
        storage.delete("s/a.png")
        assert not storage.exists("s/a.png")

    def test_read_only_sas_refuses_writes(self, azurite: Azurite) -> None:
        """A SAS without write permission: PermissionError, the token nowhere in it."""
        container = azurite.new_container()
        storage = open_storage(
            f"az+http://{ACCOUNT}:{quote(_sas('rl'))}@{azurite.host}/{container}/"
        )
        assert list(storage.list()) == []
        with pytest.raises(PermissionError) as info:
            storage.write_bytes("a.txt", b"x")
        assert "'a.txt'" in str(info.value)
        _no_secret(info.value, secret_values(storage.config))

    def test_check_rows(self) -> None:
        """storage-dsn check names the account, container, prefix and account URL."""
        config = parse_dsn("az+http://devstoreaccount1:k3y@127.0.0.1:10000/media/site/")
        rows = dict(get_scheme(config.scheme).describe(config))
        assert rows["account"] == "devstoreaccount1"
        assert rows["container"] == "media"
        assert rows["prefix"] == "site"
        assert rows["endpoint"] == "http://127.0.0.1:10000/devstoreaccount1"
        assert "k3y" not in str(rows)


class TestNames:
    def test_keys_are_blob_names(self, azurite: Azurite) -> None:
        """Each key is stored under exactly its name: '?', '#', '%' and '+' included."""
        container = azurite.new_container()
        storage = open_storage(
            f"az+http://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@{azurite.host}/{container}/m/"
        )
        odd = [*KEYS, "q?versionid=1.txt", "#hash.txt", "a?b#c?d.txt"]
        storage.write_many({key: key.encode() for key in odd})
        assert _blob_names(azurite, container) == sorted(f"m/{key}" for key in odd)
        assert list(storage.list()) == sorted(odd)
        assert all(storage.read_bytes(key) == key.encode() for key in odd)

    def test_hadoop_folder_blob_is_not_a_key(self, storage_factory: Callable[..., Storage]) -> None:
        """The empty "d" blob with hdi_isfolder=true that Hadoop's drivers leave is a
        directory: not listed, not found by stat or exists."""
        from tests.conftest import write_elsewhere

        storage = storage_factory("azure")
        storage.write_bytes("d/a.txt", b"x")
        write_elsewhere(storage, "d/", b"")
        assert not storage.exists("d")
        with pytest.raises(FileNotFoundError):
            storage.stat("d")
        assert list(storage.list()) == ["d/a.txt"]


class TestWrites:
    def test_spilled_exclusive_upload(self, storage_factory: Callable[..., Storage]) -> None:
        """A write past the in-memory limit keeps its content type, and as a create it
        refuses an existing key, leaving it whole."""
        storage = storage_factory("azure")
        data = os.urandom(9 * 1024 * 1024)
        with storage.open("big.png", "xb") as f:
            f.write(data)
        assert storage.stat("big.png").content_type == "image/png"
        with pytest.raises(FileExistsError, match=r"big\.png"):
            storage.save("big.png", io.BytesIO(b"y" * len(data)), overwrite=False)
        assert storage.read_bytes("big.png") == data


class TestErrors:
    @pytest.mark.parametrize(
        "op",
        ["stat", "exists", "delete", "scan", "read_many", "write_many", "open", "save"],
    )
    def test_wrong_key(self, storage_factory: Callable[..., Storage], op: str) -> None:
        """Every operation with a wrong key is a PermissionError without the key in it."""
        good = storage_factory("azure")
        good.write_bytes("a.txt", b"x")
        wrong = good.config.to_dsn().replace(QUOTED_ACCOUNT_KEY, "A" + QUOTED_ACCOUNT_KEY[1:])
        bad = open_storage(wrong)
        calls: dict[str, Callable[[], Any]] = {
            "stat": lambda: bad.stat("a.txt"),
            "exists": lambda: bad.exists("a.txt"),
            "delete": lambda: bad.delete("a.txt"),
            "scan": lambda: list(bad.scan()),
            "read_many": lambda: bad.read_many(["a.txt"]),
            "write_many": lambda: bad.write_many({"b.txt": b"y"}),
            "open": lambda: bad.open("a.txt").read(),
            "save": lambda: bad.save("a.txt", io.BytesIO(b"y"), overwrite=False),
        }
        with pytest.raises(PermissionError) as info:
            calls[op]()
        _no_secret(info.value, [ACCOUNT_KEY, *secret_values(bad.config)])
        assert good.read_bytes("a.txt") == b"x"

    def test_missing_container(self, azurite: Azurite) -> None:
        """A container that does not exist: FileNotFoundError on reads and writes."""
        storage = open_storage(
            f"az+http://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@{azurite.host}/no-such-container/"
        )
        with pytest.raises(FileNotFoundError):
            storage.read_bytes("a.txt")
        with pytest.raises(FileNotFoundError):
            storage.write_bytes("a.txt", b"x")
        with pytest.raises(FileNotFoundError):
            list(storage.list())

    def test_unreachable_is_connection_error(self) -> None:
        """A request that reaches no server is a ConnectionError naming the account URL.

        Checked on the SDK's exception: against a closed port the SDK first retries
        (``retries=``, 2, 4, 8 s apart; tests/test_timeouts.py holds the rest).
        """
        from azure.core.exceptions import ServiceRequestError

        from storage_dsn.schemes.azure import _oserror

        error = _oserror(ServiceRequestError("refused, see " + ACCOUNT_KEY), "a.txt", "http://h/a")
        assert isinstance(error, ConnectionError)
        assert str(error) == "cannot reach http://h/a (ServiceRequestError): 'a.txt'"


def test_logs_carry_no_secret(azurite: Azurite, caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG level, the SDK's and adlfs's logs show neither the key nor a SAS."""
    caplog.set_level(logging.DEBUG)
    token = _sas("rwdlac")
    for password in (QUOTED_ACCOUNT_KEY, quote(token)):
        container = azurite.new_container()
        storage = open_storage(f"az+http://{ACCOUNT}:{password}@{azurite.host}/{container}/")
        storage.write_bytes("a.txt", b"x")
        storage.read_bytes("a.txt")
        list(storage.scan())
        with pytest.raises(FileNotFoundError):
            storage.stat("missing.txt")
    secrets = [ACCOUNT_KEY, base64.b64decode(token).decode()]
    secrets += [s for s in secrets[1].split("&") if s.startswith("sig=")]
    texts = [record.getMessage() for record in caplog.records]
    assert texts
    for secret in secrets:
        assert not [t for t in texts if secret in t or quote(secret, safe="") in t]
