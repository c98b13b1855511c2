"""GCS V4 signed URLs (``storage_dsn.schemes.gcs.signing``) from a throwaway service-account
key: byte-identical to google-cloud-storage's ``Blob.generate_signed_url(version="v4")`` at a
frozen clock, RSA-verified against the string the SDK signs, and served by fake-gcs-server.

fake-gcs-server checks no signature (nor expiry, nor the signed Content-Type): it proves that
the URLs address the right objects, while the signature is proved by the comparison with the
SDK and the RSA verification here.
"""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from storage_dsn import InvalidDSNError, InvalidKeyError, NoPublicURLError, open_storage, parse_dsn
from storage_dsn.storage import make_resolver
from storage_dsn.urls import content_disposition
from tests.servers.gcs import FakeGCS

FROZEN = 1767225600.75  # 2026-01-01T00:00:00.75Z
EMAIL = "media-signer@throwaway.iam.gserviceaccount.com"
KEY = "a b/ü+%~!.txt"


@pytest.fixture(scope="module")
def service_account() -> dict[str, str]:
    """A service-account key made for this run: a fresh 2048-bit RSA key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "throwaway",
        "private_key_id": "0" * 40,
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",  # nothing may reach Google from a test
    }


def _token(info: dict[str, str]) -> str:
    return "option.token=" + quote(json.dumps(info), safe="")


def _sdk_url(
    info: dict[str, str], endpoint: str, blob_name: str, expires: int = 3600, **kwargs: Any
) -> tuple[str, bytes]:
    """google-cloud-storage's V4 URL for the same inputs and time, and the bytes it signed."""
    from google.cloud import storage as gcs
    from google.cloud.storage import _signing
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_info(info)
    client = gcs.Client(project="throwaway", credentials=credentials)
    blob = client.bucket("bkt").blob(blob_name)
    frozen = datetime.datetime.fromtimestamp(FROZEN, datetime.timezone.utc)
    signed: list[bytes] = []
    sign_bytes = credentials.sign_bytes

    def spy(message: bytes) -> bytes:
        signed.append(message)
        return sign_bytes(message)  # type: ignore[no-any-return]

    with (
        mock.patch.object(_signing, "_NOW", return_value=frozen),
        mock.patch.object(credentials, "sign_bytes", spy),
    ):
        url = blob.generate_signed_url(
            version="v4",
            api_access_endpoint=endpoint,
            credentials=credentials,
            expiration=datetime.timedelta(seconds=expires),
            **kwargs,
        )
    return url, signed[0]


CASES = [
    ("gs://bkt/media/?", "https://storage.googleapis.com", "media/"),
    ("gs+http://127.0.0.1:4443/bkt/?", "http://127.0.0.1:4443", ""),
]


class TestSameAsTheSDK:
    @pytest.mark.parametrize(("dsn", "endpoint", "prefix"), CASES, ids=["gs", "gs+http"])
    @pytest.mark.parametrize("key", ["cat.jpg", KEY, "dir/ÄÖ ü/x (1).png"])
    def test_read(
        self, service_account: dict[str, str], dsn: str, endpoint: str, prefix: str, key: str
    ) -> None:
        """A read URL is the SDK's, byte for byte."""
        config = parse_dsn(f"{dsn}qs_auth=true&{_token(service_account)}")
        ours = make_resolver(config, environ={}, clock=lambda: FROZEN).url(key)
        assert ours == _sdk_url(service_account, endpoint, prefix + key)[0]

    @pytest.mark.parametrize(("dsn", "endpoint", "prefix"), CASES, ids=["gs", "gs+http"])
    def test_overrides_and_expires(
        self, service_account: dict[str, str], dsn: str, endpoint: str, prefix: str
    ) -> None:
        """response-content-disposition/-type and a lifetime of its own, as the SDK signs."""
        urls = make_resolver(parse_dsn(dsn + _token(service_account)), clock=lambda: FROZEN)
        name = "Résumé 2026.pdf"
        ours = urls.url(KEY, 60, download_name=name, content_type="application/pdf")
        theirs, _ = _sdk_url(
            service_account,
            endpoint,
            prefix + KEY,
            60,
            response_disposition=content_disposition(name),
            response_type="application/pdf",
        )
        assert ours == theirs

    @pytest.mark.parametrize(("dsn", "endpoint", "prefix"), CASES, ids=["gs", "gs+http"])
    @pytest.mark.parametrize("content_type", [None, "image/png", "text/plain; charset=utf-8"])
    def test_upload(
        self,
        service_account: dict[str, str],
        dsn: str,
        endpoint: str,
        prefix: str,
        content_type: str | None,
    ) -> None:
        """A PUT URL is the SDK's; a content type is a signed header."""
        urls = make_resolver(parse_dsn(dsn + _token(service_account)), clock=lambda: FROZEN)
        ours = urls.upload_url(KEY, 900, content_type=content_type)
        kwargs = {"content_type": content_type} if content_type else {}
        theirs, _ = _sdk_url(service_account, endpoint, prefix + KEY, 900, method="PUT", **kwargs)
        assert ours == theirs

    def test_signature_verifies(self, service_account: dict[str, str]) -> None:
        """The signature is an RSA signature, by the key, of the string the SDK signs."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        dsn = f"gs://bkt/?qs_auth=true&{_token(service_account)}"
        ours = make_resolver(parse_dsn(dsn), clock=lambda: FROZEN).url(KEY)
        _, string_to_sign = _sdk_url(service_account, "https://storage.googleapis.com", KEY)
        signature = bytes.fromhex(parse_qs(urlsplit(ours).query)["X-Goog-Signature"][0])
        key: Any = serialization.load_pem_private_key(
            service_account["private_key"].encode(), password=None
        )
        key.public_key().verify(signature, string_to_sign, padding.PKCS1v15(), hashes.SHA256())


class TestKeys:
    def test_key_file_path(self, service_account: dict[str, str], tmp_path: Path) -> None:
        """option.token may name the JSON key file; the file is read on the first URL."""
        path = tmp_path / "key.json"
        dsn = f"gs://bkt/?qs_auth=true&option.token={quote(str(path), safe='')}"
        storage = open_storage(dsn)
        path.write_text(json.dumps(service_account))
        assert f"X-Goog-Credential={quote(EMAIL)}%2F" in storage.url("a.txt")

    def test_key_from_the_environment(
        self, service_account: dict[str, str], tmp_path: Path
    ) -> None:
        """Without option.token, GOOGLE_APPLICATION_CREDENTIALS of the storage's environ."""
        path = tmp_path / "key.json"
        path.write_text(json.dumps(service_account))
        environ = {"GOOGLE_APPLICATION_CREDENTIALS": str(path)}
        storage = open_storage("gs://bkt/?qs_auth=true", environ=environ)
        assert "X-Goog-Signature=" in storage.url("a.txt")

    @pytest.mark.parametrize(
        "token",
        [None, "anon", "/nonexistent/key.json", '{"type": "authorized_user"}', "[1]"],
        ids=["none", "anon", "missing-file", "user-key", "not-an-object"],
    )
    def test_no_service_account_key(self, token: str | None) -> None:
        """Without a service-account key: NoPublicURLError saying where one goes."""
        dsn = "gs://bkt/?qs_auth=true"
        if token is not None:
            dsn += f"&option.token={quote(token, safe='')}"
        storage = open_storage(dsn, environ={})
        with pytest.raises(NoPublicURLError, match=r"option\.token"):
            storage.url("a.txt")
        with pytest.raises(InvalidKeyError):
            storage.url("../a.txt")  # the key is still checked first

    def test_secret_not_shown(self, service_account: dict[str, str]) -> None:
        """No part of the private key in a repr or an error."""
        broken = dict(service_account, private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n")
        storage = open_storage(f"gs://bkt/?{_token(broken)}")
        with pytest.raises(NoPublicURLError) as caught:
            storage.upload_url("a.txt")
        good = open_storage(f"gs://bkt/?qs_auth=true&{_token(service_account)}")
        good.url("a.txt")
        body = service_account["private_key"].splitlines()[1]
        for text in (str(caught.value), repr(storage._url), repr(good._url), repr(good)):
            assert "AAAA" not in text
            assert body not in text


class TestParameters:
    def test_parsed(self) -> None:
        config = parse_dsn("gs://bkt/?qs_auth=true&expires=900")
        assert (config.signed_urls, config.url_expires) == (True, 900)
        assert not parse_dsn("gs://bkt/").signed_urls

    @pytest.mark.parametrize("query", ["expires=0", "expires=604801", "qs_auth=yes"])
    def test_refused(self, query: str) -> None:
        with pytest.raises(InvalidDSNError):
            parse_dsn(f"gs://bkt/?{query}")

    def test_lifetime_refused_per_call(self, service_account: dict[str, str]) -> None:
        storage = open_storage(f"gs://bkt/?{_token(service_account)}")
        with pytest.raises(NoPublicURLError, match="7 days"):
            storage.upload_url("a.txt", expires=604801)

    def test_public_without_qs_auth(self) -> None:
        assert open_storage("gs://bkt/m/").url(KEY) == (
            "https://storage.googleapis.com/bkt/m/a%20b/%C3%BC%2B%25~%21.txt"
        )

    def test_no_upload_form_yet(self) -> None:
        with pytest.raises(NoPublicURLError, match="upload_url"):
            open_storage("gs://bkt/").upload_form("avatars/")
        with pytest.raises(InvalidKeyError):
            open_storage("gs://bkt/").upload_form("../avatars/")


def _fetch(url: str, method: str = "GET", data: bytes | None = None, **headers: str) -> bytes:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()  # type: ignore[no-any-return]


class TestAgainstFakeGCS:
    def test_signed_urls_address_the_objects(
        self, fake_gcs: FakeGCS, service_account: dict[str, str]
    ) -> None:
        """fake-gcs-server serves a signed URL's object and takes a signed PUT (it checks
        neither signature: see the module docstring)."""
        dsn = f"gs+http://{fake_gcs.host}/{fake_gcs.new_bucket()}/media/?qs_auth=true"
        storage = open_storage(dsn)  # I/O anonymous, as the emulator wants
        signer = open_storage(f"{dsn}&{_token(service_account)}")  # URLs only: no I/O
        storage.write_bytes(KEY, b"signed bytes")
        assert _fetch(signer.url(KEY)) == b"signed bytes"
        url = signer.upload_url("up/new ü.txt", content_type="text/plain")
        _fetch(url, "PUT", b"uploaded", **{"Content-Type": "text/plain"})
        assert storage.read_bytes("up/new ü.txt") == b"uploaded"
