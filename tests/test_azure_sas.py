"""Azure SAS URLs (``storage_dsn.schemes.azure_sas``): byte-identical to azure-storage-blob's
``generate_blob_sas`` at a frozen clock, and accepted, refused and honoured by Azurite,
which checks SAS signatures, permissions and expiry."""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from email.message import Message
from typing import Any, NamedTuple

import pytest

from storage_dsn import InvalidDSNError, InvalidKeyError, NoPublicURLError, open_storage, parse_dsn
from storage_dsn.schemes.azure_sas import SAS_VERSION
from storage_dsn.storage import make_resolver
from storage_dsn.urls import content_disposition
from tests.servers.azurite import ACCOUNT, ACCOUNT_KEY, QUOTED_ACCOUNT_KEY, Azurite, blob_service

FROZEN = 1767225600.75  # 2026-01-01T00:00:00.75Z: a fraction of a second, as time.time() has
LOCAL = f"az+http://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@127.0.0.1:10000/box/media/"
CLOUD = f"az://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@blob.core.windows.net/box/"
KEY = "a b/ü+%~!.txt"  # spaces, UTF-8, '+', '%': all percent-encoded, all signed raw


def _sdk_url(dsn: str, key: str, permission: str, expires: int = 3600, **overrides: str) -> str:
    """What azure-storage-blob makes for the same blob, inputs and time."""
    from azure.storage.blob import BlobClient, generate_blob_sas

    https = dsn.startswith("az:")
    account_url = (
        f"https://{ACCOUNT}.blob.core.windows.net" if https else f"http://127.0.0.1:10000/{ACCOUNT}"
    )
    blob = ("" if https else "media/") + key
    sas = generate_blob_sas(
        ACCOUNT,
        "box",
        blob,
        account_key=ACCOUNT_KEY,
        permission=permission,
        expiry=datetime.fromtimestamp(FROZEN, timezone.utc) + timedelta(seconds=expires),
        protocol="https" if https else None,
        **overrides,
    )
    return str(BlobClient(account_url, "box", blob, credential=sas).url)


class Response(NamedTuple):
    status: int
    headers: Message
    body: bytes


def _fetch(url: str, method: str = "GET", data: bytes | None = None, **headers: str) -> Response:
    """The response to ``url``, read and closed (an error status is a response too)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, error.headers, error.read())


class TestSameAsTheSDK:
    @pytest.mark.parametrize("dsn", [LOCAL, CLOUD], ids=["az+http", "az"])
    @pytest.mark.parametrize("key", ["cat.jpg", KEY, "dir/ÄÖ ü/x (1).png"])
    def test_read(self, dsn: str, key: str) -> None:
        """A read SAS URL is the SDK's, byte for byte (spr=https on HTTPS accounts)."""
        urls = make_resolver(parse_dsn(dsn + "?qs_auth=true"), environ={}, clock=lambda: FROZEN)
        assert urls.url(key) == _sdk_url(dsn, key, "r")

    @pytest.mark.parametrize("dsn", [LOCAL, CLOUD], ids=["az+http", "az"])
    def test_overrides_and_expires(self, dsn: str) -> None:
        """rscd/rsct and a lifetime of its own are signed as the SDK signs them."""
        urls = make_resolver(parse_dsn(dsn), environ={}, clock=lambda: FROZEN)
        ours = urls.url(KEY, 60, download_name="Résumé 2026.pdf", content_type="application/pdf")
        theirs = _sdk_url(
            dsn,
            KEY,
            "r",
            60,
            content_disposition=content_disposition("Résumé 2026.pdf"),
            content_type="application/pdf",
        )
        assert ours == theirs
        assert urls.url(KEY, download_name="a.txt") == _sdk_url(
            dsn, KEY, "r", content_disposition=content_disposition("a.txt")
        )

    @pytest.mark.parametrize("dsn", [LOCAL, CLOUD], ids=["az+http", "az"])
    def test_upload(self, dsn: str) -> None:
        """An upload URL is the SDK's SAS with create and write permission."""
        urls = make_resolver(parse_dsn(dsn + "?expires=900"), environ={}, clock=lambda: FROZEN)
        assert urls.upload_url(KEY) == _sdk_url(dsn, KEY, "cw", 900)

    def test_signed_version_is_the_installed_sdks(self) -> None:
        """The pinned sv= is the one azure-storage-blob signs with (bump both together)."""
        from azure.storage.blob._shared.constants import X_MS_VERSION

        assert SAS_VERSION == X_MS_VERSION


class TestParameters:
    def test_parsed(self) -> None:
        config = parse_dsn(CLOUD + "?qs_auth=true&expires=900")
        assert (config.signed_urls, config.url_expires) == (True, 900)
        assert not parse_dsn(CLOUD).signed_urls

    @pytest.mark.parametrize("query", ["expires=0", "expires=604801", "expires=1h", "qs_auth=1"])
    def test_refused(self, query: str) -> None:
        with pytest.raises(InvalidDSNError):
            parse_dsn(f"{CLOUD}?{query}")

    @pytest.mark.parametrize("expires", [0, 604801, 1.5, "60"])
    def test_lifetime_refused_per_call(self, expires: Any) -> None:
        storage = open_storage(CLOUD + "?qs_auth=true")
        with pytest.raises(NoPublicURLError, match="expires"):
            storage.url("a.txt", expires=expires)

    def test_each_lifetime_its_own_expiry(self) -> None:
        """URLs made in the same second with different lifetimes expire when each asked."""
        urls = make_resolver(parse_dsn(CLOUD + "?qs_auth=true"), environ={}, clock=lambda: FROZEN)
        for expires, until in [(60, "00%3A01%3A00Z"), (3600, "01%3A00%3A00Z"), (60, "00%3A01")]:
            assert f"se=2026-01-01T{until}" in urls.url("a.txt", expires)

    def test_public_without_qs_auth(self) -> None:
        """Without qs_auth and overrides, URLs stay public and unsigned."""
        storage = open_storage(CLOUD)
        assert storage.url(KEY) == (
            f"https://{ACCOUNT}.blob.core.windows.net/box/a%20b/%C3%BC%2B%25~%21.txt"
        )

    def test_keys_checked_first(self) -> None:
        storage = open_storage(CLOUD + "?qs_auth=true")
        for call in (storage.url, storage.upload_url, storage.upload_form):
            with pytest.raises(InvalidKeyError):
                call("../a.txt")

    def test_no_post_policy(self) -> None:
        """Azure has no upload form; the error points to upload_url."""
        with pytest.raises(NoPublicURLError, match="upload_url"):
            open_storage(CLOUD).upload_form("avatars/")

    def test_upload_type_not_enforceable(self) -> None:
        """A SAS cannot restrict the uploaded type: refused, not silently unenforced."""
        with pytest.raises(NoPublicURLError, match="content_type"):
            open_storage(CLOUD).upload_url("a.png", content_type="image/png")

    def test_no_key_in_repr_or_urls(self) -> None:
        storage = open_storage(CLOUD + "?qs_auth=true")
        url = storage.url("a.txt") + storage.upload_url("a.txt")
        for text in (url, repr(storage), repr(storage._url)):
            assert ACCOUNT_KEY not in text
            assert QUOTED_ACCOUNT_KEY not in text


def _account_sas(permission: str) -> str:
    from azure.storage.blob import ResourceTypes, generate_account_sas

    return str(
        generate_account_sas(
            ACCOUNT,
            ACCOUNT_KEY,
            resource_types=ResourceTypes(object=True),
            permission=permission,
            expiry=datetime.now(timezone.utc) + timedelta(hours=1),
        )
    )


class TestDSNWithASAS:
    def _dsn(self, azurite: Azurite, container: str, permission: str) -> str:
        sas = base64.b64encode(_account_sas(permission).encode()).decode()
        return f"az+http://{ACCOUNT}:{sas}@{azurite.host}/{container}/?qs_auth=true"

    def test_read_only_sas_reused(self, azurite: Azurite) -> None:
        """url() hands out the DSN's SAS when it only grants reading; Azurite accepts it."""
        container = azurite.new_container()
        blob_service(azurite.account_url).get_blob_client(container, "a b.txt").upload_blob(b"x")
        storage = open_storage(self._dsn(azurite, container, "r"))
        assert _fetch(storage.url("a b.txt")).body == b"x"
        with pytest.raises(NoPublicURLError, match="account key"):
            storage.url("a b.txt", expires=60)
        with pytest.raises(NoPublicURLError, match="account key"):
            storage.url("a b.txt", download_name="b.txt")
        with pytest.raises(NoPublicURLError, match="account key"):
            storage.upload_url("a b.txt")

    def test_wider_sas_not_handed_out(self, azurite: Azurite) -> None:
        """A SAS that can write or delete is the app's credential, not a browser's."""
        storage = open_storage(self._dsn(azurite, azurite.new_container(), "rwdl"))
        with pytest.raises(NoPublicURLError, match="more than reading") as caught:
            storage.url("a.txt")
        assert "sig=" not in str(caught.value)


class TestAgainstAzurite:
    @pytest.fixture
    def storage(self, azurite: Azurite) -> Any:
        dsn = f"az+http://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@{azurite.host}/{azurite.new_container()}"
        storage = open_storage(dsn + "/media/?qs_auth=true")
        storage.write_bytes(KEY, b"signed bytes")
        return storage

    def test_signed_url_reads(self, storage: Any) -> None:
        """Azurite checks the signature of every SAS URL: ours pass."""
        response = _fetch(storage.url(KEY))
        assert (response.status, response.body) == (200, b"signed bytes")

    @pytest.mark.parametrize(
        "tamper",
        [
            lambda url: url.replace("sp=r&", "sp=rw&"),
            lambda url: url.replace("/media/", "/Media/"),
            lambda url: url.replace("sig=", "sig=A"),
        ],
        ids=["permission", "path", "signature"],
    )
    def test_tampered_url_refused(self, storage: Any, tamper: Any) -> None:
        assert _fetch(tamper(storage.url(KEY))).status == 403

    def test_expired_url_refused(self, storage: Any) -> None:
        """An hour-old URL that lived a minute is refused (Azurite checks se=)."""
        old = make_resolver(storage.config, environ={}, clock=lambda: time.time() - 3600)
        assert _fetch(old.url(KEY, 60)).status == 403

    def test_overrides_honoured(self, azurite: Azurite) -> None:
        """download_name and content_type come back as the response's headers, signed even
        on a storage without qs_auth."""
        dsn = f"az+http://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@{azurite.host}/{azurite.new_container()}/"
        storage = open_storage(dsn)
        storage.write_bytes("report.bin", b"%PDF")
        name = "Bericht März.pdf"
        response = _fetch(
            storage.url("report.bin", download_name=name, content_type="application/pdf")
        )
        assert response.status == 200
        assert response.headers["Content-Disposition"] == content_disposition(name)
        assert response.headers["Content-Type"] == "application/pdf"

    def test_upload_url_creates_the_blob(self, storage: Any) -> None:
        """A PUT with x-ms-blob-type: BlockBlob to upload_url() stores the bytes."""
        url = storage.upload_url("uploads/new ü.txt")
        response = _fetch(url, "PUT", b"uploaded", **{"x-ms-blob-type": "BlockBlob"})
        assert response.status == 201
        assert storage.read_bytes("uploads/new ü.txt") == b"uploaded"
        assert _fetch(url, "PUT", b"again", **{"x-ms-blob-type": "BlockBlob"}).status == 201

    def test_read_url_cannot_upload(self, storage: Any) -> None:
        response = _fetch(storage.url(KEY), "PUT", b"x", **{"x-ms-blob-type": "BlockBlob"})
        assert response.status == 403
        assert storage.read_bytes(KEY) == b"signed bytes"
