"""Public and presigned URLs: the rules table, botocore agreement, and real fetches."""

from __future__ import annotations

import base64
import datetime
import json
import types
import urllib.request
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from storage_dsn import (
    InvalidDSNError,
    InvalidKeyError,
    NoPublicURLError,
    StorageDSNError,
    open_storage,
    parse_dsn,
)
from storage_dsn.keys import validate_key
from storage_dsn.storage import make_resolver
from storage_dsn.urls import (
    check_content_type,
    content_disposition,
    disposition_query,
    encode_unreserved,
    response_query,
)
from tests.conftest import KEY_ID, QUOTED_SECRET, SECRET, make_bucket

KEY = "a b/ü.txt"

URLS = [
    # the contract's examples
    ("file:///data/media/?url=%2Fmedia%2F", KEY, "/media/a%20b/%C3%BC.txt"),
    (
        "s3://K:S@my-bucket.s3.eu-central-1.amazonaws.com/media/?domain=cdn.example.com",
        KEY,
        "https://cdn.example.com/media/a%20b/%C3%BC.txt",
    ),
    (
        "s3://K:S@b.nyc3.digitaloceanspaces.com/?url=https%3A%2F%2Fcdn.example.org%2Fx%2F",
        KEY,
        "https://cdn.example.org/x/a%20b/%C3%BC.txt",
    ),
    (
        "s3://K:S@my.dotted.bucket.s3-us-west-2.amazonaws.com/",
        KEY,
        "https://s3.us-west-2.amazonaws.com/my.dotted.bucket/a%20b/%C3%BC.txt",
    ),
    # reserved characters
    ("file:///m/?url=/media/", "x+y=z?&#~.png", "/media/x%2By%3Dz%3F%26%23~.png"),
    # url= keeps its own path, with or without the trailing slash
    (
        "file:///m/?url=https%3A%2F%2Fcdn.example.org%2Fstatic%2Fu",
        "a.jpg",
        "https://cdn.example.org/static/u/a.jpg",
    ),
    ("memory://n/p/?url=%2Fmedia", "a.jpg", "/media/a.jpg"),
    # domain= with and without a prefix
    (
        "s3://K:S@bucket.s3.amazonaws.com/?domain=cdn.example.com",
        "a.jpg",
        "https://cdn.example.com/a.jpg",
    ),
    ("memory://n/p/?domain=cdn.example.com", "a.jpg", "https://cdn.example.com/p/a.jpg"),
    # S3 virtual host, AWS
    (
        "s3://K:S@bucket.s3.eu-central-1.amazonaws.com/media/",
        "a.jpg",
        "https://bucket.s3.eu-central-1.amazonaws.com/media/a.jpg",
    ),
    (
        "s3://K:S@bucket.s3-eu-west-1.amazonaws.com/",
        "a.jpg",
        "https://bucket.s3.eu-west-1.amazonaws.com/a.jpg",
    ),
    ("s3://K:S@bucket.s3.amazonaws.com/", "a.jpg", "https://bucket.s3.amazonaws.com/a.jpg"),
    (
        "s3://K:S@bucket.s3.dualstack.eu-west-1.amazonaws.com/",
        "a.jpg",
        "https://bucket.s3.dualstack.eu-west-1.amazonaws.com/a.jpg",
    ),
    (
        "s3://K:S@photos-123456789012.s3-accesspoint.eu-west-1.amazonaws.com/m/",
        "a.jpg",
        "https://photos-123456789012.s3-accesspoint.eu-west-1.amazonaws.com/m/a.jpg",
    ),
    # S3 path style: addressing_style=path, AWS host without bucket, IP/port, s3+http
    (
        "s3://K:S@bucket.s3.eu-central-1.amazonaws.com/?addressing_style=path",
        "a.jpg",
        "https://s3.eu-central-1.amazonaws.com/bucket/a.jpg",
    ),
    (
        "s3://K:S@s3.eu-west-1.amazonaws.com/bucket/m/",
        "a.jpg",
        "https://s3.eu-west-1.amazonaws.com/bucket/m/a.jpg",
    ),
    ("s3://K:S@10.1.2.3:9000/bucket/m/", "a.jpg", "https://10.1.2.3:9000/bucket/m/a.jpg"),
    (
        "s3+http://K:S@127.0.0.1:9000/bucket/m/",
        KEY,
        "http://127.0.0.1:9000/bucket/m/a%20b/%C3%BC.txt",
    ),
    # S3-compatible hosts as written
    ("s3://K:S@bucket.sos-ch-dk-2.exo.io/m/", "a.jpg", "https://bucket.sos-ch-dk-2.exo.io/m/a.jpg"),
    (
        "s3://K:S@bucket.nyc3.digitaloceanspaces.com/",
        "a.jpg",
        "https://bucket.nyc3.digitaloceanspaces.com/a.jpg",
    ),
    # other clouds' defaults
    ("gs://bucket/p/", KEY, "https://storage.googleapis.com/bucket/p/a%20b/%C3%BC.txt"),
    (
        "az://acct:k@blob.core.windows.net/c/p/",
        "a.jpg",
        "https://acct.blob.core.windows.net/c/p/a.jpg",
    ),
    (
        "az+http://devstoreaccount1:k@127.0.0.1:10000/c/p/",
        KEY,
        "http://127.0.0.1:10000/devstoreaccount1/c/p/a%20b/%C3%BC.txt",
    ),
]


@pytest.mark.parametrize(("dsn", "key", "url"), URLS, ids=[u[0][:60] for u in URLS])
def test_public_urls(dsn: str, key: str, url: str) -> None:
    """Each base and style gives the expected URL."""
    assert make_resolver(parse_dsn(dsn))(key, None) == url


@pytest.mark.parametrize("dsn", ["file:///data/media/", "memory://x/", "sftp://u:p@host/srv/"])
def test_no_public_url(dsn: str) -> None:
    """Storages without url=/domain= raise NoPublicURLError naming the fix."""
    with pytest.raises(NoPublicURLError, match=r"url=.*domain="):
        make_resolver(parse_dsn(dsn))("a.jpg", None)


def test_url_validates_key() -> None:
    """Storage.url refuses unsafe keys like every other method."""
    from storage_dsn import InvalidKeyError

    with pytest.raises(InvalidKeyError):
        open_storage("file:///m/?url=/media/").url("../etc/passwd")


# --- presigned URLs against botocore -------------------------------------------------------

FROZEN = datetime.datetime(2026, 11, 24, 13, 37, 42)
FROZEN_EPOCH = FROZEN.replace(tzinfo=datetime.timezone.utc).timestamp()
PRESIGN_KEYS = [KEY, "x+y=z?&#~.png", "plain.jpg", "deep/dir/ü ñ/ä%20.txt"]
PRESIGN_CASES = [
    (
        "aws-regional",
        f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-central-1.amazonaws.com/media/?qs_auth=true",
        "https://s3.eu-central-1.amazonaws.com",
        "eu-central-1",
        "virtual",
    ),
    (
        "us-east-1",
        f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.amazonaws.com/?acl=private",
        "https://s3.amazonaws.com",
        "us-east-1",
        "virtual",
    ),
    (
        "s3-http-path",
        f"s3+http://{KEY_ID}:{QUOTED_SECRET}@127.0.0.1:9000/bucket/m/?qs_auth=true",
        "http://127.0.0.1:9000",
        "us-east-1",
        "path",
    ),
    (
        "dotted-path",
        f"s3://{KEY_ID}:{QUOTED_SECRET}@my.dotted.bucket.s3-us-west-2.amazonaws.com/?qs_auth=true",
        "https://s3.us-west-2.amazonaws.com",
        "us-west-2",
        "path",
    ),
    (
        "session-token",
        f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-west-1.amazonaws.com/?qs_auth=true&token=FwoG%2Ftoken%2Bvalue%3D%3D",
        "https://s3.eu-west-1.amazonaws.com",
        "eu-west-1",
        "virtual",
    ),
    (
        "expires",
        f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-west-1.amazonaws.com/?qs_auth=true&expires=900",
        "https://s3.eu-west-1.amazonaws.com",
        "eu-west-1",
        "virtual",
    ),
]


def botocore_url(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    region: str,
    style: str,
    key: str,
    *,
    prefix: str,
    bucket: str,
    expires: int,
    token: str | None,
    version: str,
) -> str:
    import boto3
    import botocore.auth
    from botocore.config import Config

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: FROZEN)
    monkeypatch.setattr(botocore.auth, "time", types.SimpleNamespace(time=lambda: FROZEN_EPOCH))
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(signature_version=version, s3={"addressing_style": style}),
    )
    params = {"Bucket": bucket, "Key": prefix + key}
    return str(client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires))


def same_url(ours: str, theirs: str) -> None:
    a, b = urlsplit(ours), urlsplit(theirs)
    assert (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)
    assert parse_qs(a.query, strict_parsing=True) == parse_qs(b.query, strict_parsing=True)


@pytest.mark.parametrize(
    ("dsn", "endpoint", "region", "style"),
    [c[1:] for c in PRESIGN_CASES],
    ids=[c[0] for c in PRESIGN_CASES],
)
@pytest.mark.parametrize("key", PRESIGN_KEYS)
def test_sigv4_matches_botocore(
    monkeypatch: pytest.MonkeyPatch, dsn: str, endpoint: str, region: str, style: str, key: str
) -> None:
    """At the same instant, our SigV4 URL equals botocore's, signature included."""
    config = parse_dsn(dsn)
    ours = make_resolver(config, environ={}, clock=lambda: FROZEN_EPOCH)(key, None)
    bucket, _, prefix = config.root.partition("/")
    token = config.options.get("token")
    theirs = botocore_url(
        monkeypatch,
        endpoint,
        region,
        style,
        key,
        prefix=prefix + "/" if prefix else "",
        bucket=bucket,
        expires=config.url_expires,
        token=token,
        version="s3v4",
    )
    same_url(ours, theirs)
    assert "X-Amz-Signature=" in ours
    assert SECRET not in ours
    assert QUOTED_SECRET not in ours


@pytest.mark.parametrize("key", PRESIGN_KEYS)
@pytest.mark.parametrize("style", ["virtual", "path"])
def test_sigv2_matches_botocore(monkeypatch: pytest.MonkeyPatch, key: str, style: str) -> None:
    """auth=s3 gives legacy V2 query-string URLs equal to botocore's."""
    dsn = f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-west-1.amazonaws.com/m/?auth=s3&qs_auth=true&addressing_style={style}"
    ours = make_resolver(parse_dsn(dsn), environ={}, clock=lambda: FROZEN_EPOCH)(key, None)
    theirs = botocore_url(
        monkeypatch,
        "https://s3.eu-west-1.amazonaws.com",
        "eu-west-1",
        style,
        key,
        prefix="m/",
        bucket="bucket",
        expires=3600,
        token=None,
        version="s3",
    )
    same_url(ours, theirs)
    assert SECRET not in ours


def test_expires_override_and_day_change() -> None:
    """url(expires=) overrides the lifetime; the signing key follows the date."""
    now = [FROZEN_EPOCH]
    resolve = make_resolver(
        parse_dsn(f"s3://{KEY_ID}:{QUOTED_SECRET}@b.s3.amazonaws.com/?qs_auth=true"),
        environ={},
        clock=lambda: now[0],
    )
    first = resolve("a.jpg", 60)
    assert "X-Amz-Expires=60&" in first
    now[0] += 86400
    second = resolve("a.jpg", 60)
    assert "%2F20261125%2F" in second
    assert (
        parse_qs(urlsplit(first).query)["X-Amz-Signature"]
        != parse_qs(urlsplit(second).query)["X-Amz-Signature"]
    )


def test_presign_from_environment_credentials() -> None:
    """With no credentials in the DSN, presigning uses AWS_* from the environment."""
    environ = {"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret"}
    url = make_resolver(parse_dsn("s3://b.s3.amazonaws.com/?qs_auth=true"), environ=environ)(
        "a", None
    )
    assert "X-Amz-Credential=ENVKEY%2F" in url
    # Built on the first signed URL, not at open: no credentials is an error there.
    resolver = make_resolver(parse_dsn("s3://b.s3.amazonaws.com/?qs_auth=true"), environ={})
    with pytest.raises(NoPublicURLError, match="credentials"):
        resolver("a", None)


def test_presigned_repr_hides_secret() -> None:
    """The resolver's repr shows the endpoint only."""
    resolver = make_resolver(
        parse_dsn(f"s3://{KEY_ID}:{QUOTED_SECRET}@b.s3.amazonaws.com/?qs_auth=true"), environ={}
    )
    assert SECRET not in repr(resolver)


# --- over real HTTP --------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("query", ["acl=public-read", "qs_auth=true"])
def test_fetch_from_moto_server(moto_server: str, query: str) -> None:
    """A public or presigned URL fetched from the moto server returns the object's bytes."""
    bucket = make_bucket(moto_server)
    host = moto_server.removeprefix("http://")
    dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{host}/{bucket}/media/?{query}"
    storage = open_storage(dsn)
    data = "ünïcode body".encode() * 100
    storage.write_bytes(KEY, data)
    url = storage.url(KEY)
    assert url.startswith(f"{moto_server}/{bucket}/media/a%20b/%C3%BC.txt")
    with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
        assert response.read() == data


def test_resolver_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """url() does not re-parse the DSN or build anything per call."""
    storage = open_storage(f"s3://{KEY_ID}:{QUOTED_SECRET}@b.s3.amazonaws.com/?qs_auth=true")
    calls: list[Any] = []
    import storage_dsn.registry
    import storage_dsn.storage

    monkeypatch.setattr(storage_dsn.registry, "parse_dsn", lambda *a: calls.append(a))
    monkeypatch.setattr(storage_dsn.storage, "make_resolver", lambda *a, **k: calls.append(a))
    for _ in range(3):
        storage.url("a.jpg")
    assert calls == []


# Response overrides and the URL maker interface -------------------------------------------


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (
            "Übersicht März.pdf",
            'attachment; filename="Ubersicht Marz.pdf"; '
            "filename*=UTF-8''%C3%9Cbersicht%20M%C3%A4rz.pdf",
        ),
        (
            'a "quoted"\\name.txt',
            'attachment; filename="a _quoted__name.txt"; '
            "filename*=UTF-8''a%20%22quoted%22_name.txt",
        ),
        ("日本.txt", "attachment; filename=\".txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"),
        ("日本", "attachment; filename=\"download\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC"),
        ("../etc/passwd", "attachment; filename=\".._etc_passwd\"; filename*=UTF-8''.._etc_passwd"),
    ],
)
def test_content_disposition(name: str, header: str) -> None:
    assert content_disposition(name) == header


@pytest.mark.parametrize("name", ["", "  ", "a\r\nSet-Cookie: x=1", "a\x00b", "\ud800"])
def test_content_disposition_refuses_header_breakers(name: str) -> None:
    with pytest.raises(StorageDSNError):
        content_disposition(name)


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")))
    | st.text(alphabet="aZ09 !#$%&'*+,-./:;<=>?@[]\\^_`{|}~\"é", min_size=1)
)
def test_disposition_query_is_the_header_encoded(name: str) -> None:
    """The one-pass query value is the header's, percent-encoded: signed URLs and the
    media server's check (which rebuilds the header) agree on every name."""
    assume(name.strip())
    expected = encode_unreserved(content_disposition(name))
    assert disposition_query(name) == expected
    assert disposition_query(name) == expected  # the table, now holding these characters
    assert response_query(name, None) == "response-content-disposition=" + expected
    assert response_query(name, "image/png") == (
        f"response-content-disposition={expected}&response-content-type=image%2Fpng"
    )


def test_response_query_checks_the_name_first() -> None:
    with pytest.raises(StorageDSNError, match="download_name"):
        response_query("a\nb", "not a type")
    with pytest.raises(StorageDSNError, match="content_type"):
        response_query("a.txt", "not a type")
    assert response_query(None, None) == ""


@pytest.mark.parametrize(
    "value", ["image/png", "text/plain; charset=utf-8", "application/vnd.a+json"]
)
def test_content_type_accepted(value: str) -> None:
    assert check_content_type(value) == value


@pytest.mark.parametrize("value", ["", "png", "text/html\r\nX: y", "a b/c", "image/"])
def test_content_type_refused(value: str) -> None:
    with pytest.raises(StorageDSNError):
        check_content_type(value)


def test_local_url_overrides_are_a_query_the_media_server_reads() -> None:
    storage = open_storage("memory://overrides/?url=%2Fmedia%2F")
    assert storage.url("a b.pdf", download_name="Ä.pdf", content_type="application/pdf") == (
        "/media/a%20b.pdf?response-content-disposition=attachment%3B%20filename%3D%22A.pdf%22"
        "%3B%20filename%2A%3DUTF-8%27%27%25C3%2584.pdf&response-content-type=application%2Fpdf"
    )


def test_overrides_on_another_host_without_signing_are_refused() -> None:
    storage = open_storage("memory://overrides/?url=https%3A%2F%2Fcdn.example.org%2F")
    assert storage.url("a.pdf") == "https://cdn.example.org/a.pdf"
    with pytest.raises(NoPublicURLError, match="cannot sign"):
        storage.url("a.pdf", download_name="x.pdf")


def test_uploads_need_a_signing_backend() -> None:
    storage = open_storage("memory://overrides/?url=%2Fmedia%2F")
    with pytest.raises(NoPublicURLError):
        storage.upload_url("a.jpg")
    with pytest.raises(NoPublicURLError):
        storage.upload_form("avatars/")
    with pytest.raises(InvalidKeyError):
        storage.upload_url("../a.jpg")


# --- S3: overrides, upload URLs and forms against botocore -----------------------------------


def frozen_client(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    region: str,
    style: str,
    token: str | None = None,
    version: str = "s3v4",
) -> Any:
    """A boto3 client whose signers (URLs and POST policies) see FROZEN as the time."""
    import boto3
    import botocore.auth
    import botocore.signers
    from botocore.config import Config

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: FROZEN)
    monkeypatch.setattr(botocore.signers, "get_current_datetime", lambda *a, **k: FROZEN)
    monkeypatch.setattr(botocore.auth, "time", types.SimpleNamespace(time=lambda: FROZEN_EPOCH))
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=Config(signature_version=version, s3={"addressing_style": style}),
    )


def frozen_urls(dsn: str) -> Any:
    return make_resolver(parse_dsn(dsn), environ={}, clock=lambda: FROZEN_EPOCH)


def object_name(dsn: str, key: str) -> tuple[str, str]:
    bucket, _, prefix = parse_dsn(dsn).root.partition("/")
    return bucket, f"{prefix}/{key}" if prefix else key


OVERRIDES = [
    ("report.pdf", None),
    (None, "text/plain; charset=utf-8"),
    ("Übersicht März.pdf", "application/pdf"),
    ('a "quoted"\\name; x=1.txt', None),
    ("日本語 ✓.jpg", "image/jpeg"),
]
UPLOAD_QUERIES = [
    "",
    "&acl=public-read",
    "&cache_control=public%2C%20max-age%3D31536000%2C%20immutable&storage_class=STANDARD_IA",
    "&acl=private&sse=aws%3Akms&sse_kms_key_id=alias%2Fmedia&cache_control=no-cache",
    "&sse=AES256",
]
BOTO_PARAMS = {
    "acl": "ACL",
    "cache_control": "CacheControl",
    "storage_class": "StorageClass",
    "sse": "ServerSideEncryption",
    "sse_kms_key_id": "SSEKMSKeyId",
}
FORM_FIELDS = {
    "acl": "acl",
    "cache_control": "Cache-Control",
    "storage_class": "x-amz-storage-class",
    "sse": "x-amz-server-side-encryption",
    "sse_kms_key_id": "x-amz-server-side-encryption-aws-kms-key-id",
}


# The presigning cases without acl=private, so that each upload query can add its own.
UPLOAD_CASES = [
    (c[0], c[1].replace("?acl=private", "?qs_auth=true"), *c[2:]) for c in PRESIGN_CASES
]


def upload_params(dsn: str, names: dict[str, str]) -> dict[str, str]:
    """The DSN's upload settings under boto3's ``names``, in the order ``names`` has."""
    found = parse_qs(urlsplit(dsn).query)
    return {names[name]: found[name][0] for name in names if name in found}


@pytest.mark.parametrize(
    ("dsn", "endpoint", "region", "style"),
    [c[1:] for c in PRESIGN_CASES],
    ids=[c[0] for c in PRESIGN_CASES],
)
@pytest.mark.parametrize(("download_name", "content_type"), OVERRIDES)
def test_overrides_match_botocore(
    monkeypatch: pytest.MonkeyPatch,
    dsn: str,
    endpoint: str,
    region: str,
    style: str,
    download_name: str | None,
    content_type: str | None,
) -> None:
    """A URL with response overrides is, byte for byte, botocore's for the same params."""
    config = parse_dsn(dsn)
    bucket, name = object_name(dsn, KEY)
    client = frozen_client(monkeypatch, endpoint, region, style, config.options.get("token"))
    params = {"Bucket": bucket, "Key": name}
    if download_name is not None:
        params["ResponseContentDisposition"] = content_disposition(download_name)
    if content_type is not None:
        params["ResponseContentType"] = content_type
    theirs = client.generate_presigned_url("get_object", Params=params, ExpiresIn=900)
    ours = frozen_urls(dsn).url(KEY, 900, download_name=download_name, content_type=content_type)
    assert ours == theirs


def test_overrides_presign_a_public_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides on a public (unsigned) storage give a presigned URL; plain URLs stay public."""
    dsn = (
        f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-west-1.amazonaws.com/m/?domain=cdn.example.com"
    )
    urls = frozen_urls(dsn)
    assert urls.url("a.pdf") == "https://cdn.example.com/m/a.pdf"
    client = frozen_client(
        monkeypatch, "https://s3.eu-west-1.amazonaws.com", "eu-west-1", "virtual"
    )
    params = {"Bucket": "bucket", "Key": "m/a.pdf", "ResponseContentType": "application/pdf"}
    theirs = client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)
    assert urls.url("a.pdf", content_type="application/pdf") == theirs


@pytest.mark.parametrize("style", ["virtual", "path"])
@pytest.mark.parametrize(("download_name", "content_type"), OVERRIDES[:3])
def test_sigv2_overrides_match_botocore(
    monkeypatch: pytest.MonkeyPatch, style: str, download_name: str | None, content_type: str | None
) -> None:
    """auth=s3 signs response overrides as V2 sub-resources, as botocore does."""
    dsn = f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-west-1.amazonaws.com/m/?auth=s3&addressing_style={style}"
    client = frozen_client(
        monkeypatch, "https://s3.eu-west-1.amazonaws.com", "eu-west-1", style, version="s3"
    )
    params = {"Bucket": "bucket", "Key": "m/" + KEY}
    if download_name is not None:
        params["ResponseContentDisposition"] = content_disposition(download_name)
    if content_type is not None:
        params["ResponseContentType"] = content_type
    theirs = client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)
    ours = frozen_urls(dsn).url(KEY, download_name=download_name, content_type=content_type)
    same_url(ours, theirs)


@pytest.mark.parametrize(
    ("dsn", "endpoint", "region", "style"),
    [c[1:] for c in UPLOAD_CASES],
    ids=[c[0] for c in UPLOAD_CASES],
)
@pytest.mark.parametrize("query", UPLOAD_QUERIES)
@pytest.mark.parametrize("content_type", [None, "image/png", "text/plain; charset=utf-8"])
def test_upload_url_matches_botocore(
    monkeypatch: pytest.MonkeyPatch,
    dsn: str,
    endpoint: str,
    region: str,
    style: str,
    query: str,
    content_type: str | None,
) -> None:
    """upload_url is botocore's presigned put_object, the DSN's upload settings signed in."""
    dsn += query
    config = parse_dsn(dsn)
    bucket, name = object_name(dsn, KEY)
    client = frozen_client(monkeypatch, endpoint, region, style, config.options.get("token"))
    params = {"Bucket": bucket, "Key": name, **upload_params(dsn, BOTO_PARAMS)}
    if content_type is not None:
        params["ContentType"] = content_type
    theirs = client.generate_presigned_url("put_object", Params=params, ExpiresIn=120)
    assert frozen_urls(dsn).upload_url(KEY, 120, content_type=content_type) == theirs


@pytest.mark.parametrize(
    ("dsn", "endpoint", "region", "style"),
    [c[1:] for c in UPLOAD_CASES],
    ids=[c[0] for c in UPLOAD_CASES],
)
@pytest.mark.parametrize("query", UPLOAD_QUERIES)
@pytest.mark.parametrize(
    ("key", "max_size", "content_type"),
    [
        ("avatars/", 5 * 2**20, "image/"),
        ("avatars/", None, "image/*"),
        ("docs/ü b.pdf", 1000, "application/pdf"),
        ("plain.bin", None, None),
    ],
)
def test_upload_form_matches_boto3(
    monkeypatch: pytest.MonkeyPatch,
    dsn: str,
    endpoint: str,
    region: str,
    style: str,
    query: str,
    key: str,
    max_size: int | None,
    content_type: str | None,
) -> None:
    """upload_form's policy, fields and signature are generate_presigned_post's for the
    same fields and conditions."""
    dsn += query
    config = parse_dsn(dsn)
    bucket, name = object_name(dsn, key)
    client = frozen_client(monkeypatch, endpoint, region, style, config.options.get("token"))
    fields = upload_params(dsn, FORM_FIELDS)
    conditions: list[Any] = [{k: v} for k, v in fields.items()]
    if content_type is not None and content_type.endswith(("/", "/*")):
        conditions.append(["starts-with", "$Content-Type", content_type.rstrip("*")])
    elif content_type is not None:
        fields["Content-Type"] = content_type
        conditions.append({"Content-Type": content_type})
    if max_size is not None:
        conditions.append(["content-length-range", 0, max_size])
    if key.endswith("/"):
        name += "${filename}"
    theirs = client.generate_presigned_post(
        bucket, name, Fields=fields, Conditions=conditions, ExpiresIn=config.url_expires
    )
    form = frozen_urls(dsn).upload_form(key, max_size=max_size, content_type=content_type)
    ours_policy = json.loads(base64.b64decode(form.fields["policy"]))
    theirs_policy = json.loads(base64.b64decode(theirs["fields"]["policy"]))
    assert ours_policy == theirs_policy
    assert (form.url, form.fields) == (theirs["url"], theirs["fields"])
    assert type(form.fields) is dict
    assert SECRET not in str(form)


def test_public_endpoint_signs_for_the_public_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """public_endpoint_url: URLs (plain, presigned, upload, form) are for the browser's host."""
    dsn = (
        f"s3+http://{KEY_ID}:{QUOTED_SECRET}@minio:9000/bucket/m/"
        "?public_endpoint_url=http%3A%2F%2Flocalhost%3A9000"
    )
    config = parse_dsn(dsn)
    assert config.options["endpoint_url"] == "http://minio:9000"
    urls = frozen_urls(dsn)
    assert urls.url(KEY) == "http://localhost:9000/bucket/m/a%20b/%C3%BC.txt"
    client = frozen_client(monkeypatch, "http://localhost:9000", "us-east-1", "path")
    get = client.generate_presigned_url(
        "get_object",
        Params={"Bucket": "bucket", "Key": "m/a.txt", "ResponseContentType": "text/plain"},
        ExpiresIn=60,
    )
    assert urls.url("a.txt", 60, content_type="text/plain") == get
    put = client.generate_presigned_url(
        "put_object", Params={"Bucket": "bucket", "Key": "m/a.txt"}, ExpiresIn=60
    )
    assert urls.upload_url("a.txt", 60) == put
    assert urls.upload_form("a.txt").url == "http://localhost:9000/bucket"
    signed = frozen_urls(dsn + "&qs_auth=true").url("a.txt")
    assert signed.startswith("http://localhost:9000/bucket/m/a.txt?")


@pytest.mark.parametrize(
    ("dsn", "base"),
    [
        (
            "s3://K:S@bucket.s3.eu-west-1.amazonaws.com/m/?public_endpoint_url=https%3A%2F%2Fs3.example.org",
            "https://bucket.s3.example.org/m/",
        ),
        (
            "s3://K:S@bucket.s3.eu-west-1.amazonaws.com/?public_endpoint_url=http%3A%2F%2F127.0.0.1%3A9000%2F",
            "http://127.0.0.1:9000/bucket/",
        ),
        (
            "s3+http://K:S@10.0.0.5:9000/bucket/?public_endpoint_url=https%3A%2F%2Fmedia.example.org",
            "https://media.example.org/bucket/",
        ),
    ],
)
def test_public_endpoint_addressing(dsn: str, base: str) -> None:
    """The public endpoint keeps the storage's style, or path style where its host needs it."""
    assert parse_dsn(dsn).public_url == base


@pytest.mark.parametrize(
    "value", ["minio:9000", "ftp://x", "http://a/b", "http://u:p@h", "http://h?x=1"]
)
def test_public_endpoint_refused(value: str) -> None:
    with pytest.raises(InvalidDSNError, match="public_endpoint_url"):
        parse_dsn(f"s3://K:S@b.s3.amazonaws.com/?public_endpoint_url={quote(value, safe='')}")


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("storage_class=standard", "storage_class"),
        ("storage_class=", "storage_class"),
        ("sse=aes256", "sse"),
        ("sse=aws%3Akms%3Adsse", "sse"),
        ("sse_kms_key_id=alias%2Fx", "needs sse=aws:kms"),
        ("sse=AES256&sse_kms_key_id=alias%2Fx", "needs sse=aws:kms"),
        ("sse=aws%3Akms&sse_kms_key_id=a%20b", "sse_kms_key_id"),
        ("cache_control=a%0Db", "cache_control"),
        ("cache_control=%C3%BC", "cache_control"),
        ("cache_control=", "cache_control"),
        ("acl=public", "acl"),
    ],
)
def test_upload_settings_refused(query: str, match: str) -> None:
    """Upload settings are checked when the DSN is parsed."""
    with pytest.raises(InvalidDSNError, match=match):
        parse_dsn(f"s3://K:S@b.s3.amazonaws.com/?{query}")


def test_obstore_takes_upload_settings_but_not_acl() -> None:
    query = "engine=obstore&cache_control=no-cache&storage_class=STANDARD_IA&sse=AES256"
    parse_dsn(f"s3://K:S@b.s3.amazonaws.com/?{query}")
    with pytest.raises(InvalidDSNError, match="ACL"):
        parse_dsn(f"s3://K:S@b.s3.amazonaws.com/?{query}&acl=public-read")


S3_SIGNED = f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-west-1.amazonaws.com/m/?qs_auth=true"


@pytest.mark.parametrize("expires", [0, -1, 604801, 1.5, "60", True])
def test_upload_expires_validated(expires: Any) -> None:
    """upload_url and upload_form take whole seconds from 1 to 7 days, as url() does."""
    urls = frozen_urls(S3_SIGNED)
    with pytest.raises(NoPublicURLError, match="expires"):
        urls.upload_url("a.jpg", expires)
    with pytest.raises(NoPublicURLError, match="expires"):
        urls.upload_form("a.jpg", expires)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_size": -1}, "max_size"),
        ({"max_size": 5 * 2**30 + 1}, "max_size"),
        ({"max_size": 1.0}, "max_size"),
        ({"max_size": True}, "max_size"),
        ({"content_type": "image"}, "content_type"),
        ({"content_type": "/*"}, "content_type"),
        ({"content_type": "text/html\r\nX: y"}, "content_type"),
        ({"content_type": "a b/"}, "content_type"),
    ],
)
def test_upload_form_arguments_validated(kwargs: dict[str, Any], match: str) -> None:
    urls = frozen_urls(S3_SIGNED)
    for _ in range(2):  # refused again: only accepted types are remembered
        with pytest.raises(StorageDSNError, match=match):
            urls.upload_form("avatars/", **kwargs)


@pytest.mark.parametrize("content_type", [["image/png"], 3, None])
def test_upload_form_type_of_another_kind(content_type: Any) -> None:
    urls = frozen_urls(S3_SIGNED)
    if content_type is None:
        assert "Content-Type" not in urls.upload_form("a/", content_type=None).fields
        return
    with pytest.raises(StorageDSNError, match="content_type"):
        urls.upload_form("a/", content_type=content_type)


def test_upload_form_types_remembered_give_the_same_forms() -> None:
    """A type seen before gives the form a new signer gives (the checked type is kept)."""
    kept = frozen_urls(S3_SIGNED)
    for content_type in ("image/png", "image/", "image/*", "image/png", "image/", "text/plain"):
        fresh = frozen_urls(S3_SIGNED).upload_form("a/", content_type=content_type)
        assert kept.upload_form("a/", content_type=content_type) == fresh


@pytest.mark.parametrize("key", ["../a.jpg", "/a", "a//b/", "a\\b", ".."])
def test_upload_keys_validated_first(key: str) -> None:
    """A bad key is refused before anything else, credentials or not."""
    for environ in ({}, {"AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S"}):
        urls = make_resolver(parse_dsn("s3://b.s3.amazonaws.com/"), environ=environ)
        with pytest.raises(InvalidKeyError):
            urls.upload_url(key)
        with pytest.raises(InvalidKeyError):
            urls.upload_form(key)
        with pytest.raises(InvalidKeyError):
            urls.url(key, download_name="x.txt")


def test_sigv2_cannot_sign_uploads() -> None:
    urls = frozen_urls(f"s3://{KEY_ID}:{QUOTED_SECRET}@b.s3.amazonaws.com/?auth=s3")
    with pytest.raises(NoPublicURLError, match="auth=s3v4"):
        urls.upload_url("a.jpg")
    with pytest.raises(NoPublicURLError, match="auth=s3v4"):
        urls.upload_form("a/")


def test_uploads_without_credentials_say_so() -> None:
    urls = make_resolver(parse_dsn("s3://b.s3.amazonaws.com/"), environ={})
    with pytest.raises(NoPublicURLError, match="credentials"):
        urls.upload_url("a.jpg")
    assert urls.url("a.jpg") == "https://b.s3.amazonaws.com/a.jpg"


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1
    ).filter(str.strip),
    key=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1),
)
def test_any_download_name_matches_botocore(name: str, key: str) -> None:
    """Whatever the name (quotes, unicode, spaces), our URL is botocore's, byte for byte."""
    from unittest import mock

    import botocore.auth

    try:
        validate_key(key)
    except InvalidKeyError:
        assume(False)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=FROZEN):
        theirs = BOTO_V4.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": "bucket",
                "Key": "m/" + key,
                "ResponseContentDisposition": content_disposition(name),
            },
            ExpiresIn=3600,
        )
    assert HYPO_URLS.url(key, download_name=name) == theirs


def _boto_v4() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9000",
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


BOTO_V4 = _boto_v4()
HYPO_URLS = make_resolver(
    parse_dsn(f"s3+http://{KEY_ID}:{QUOTED_SECRET}@127.0.0.1:9000/bucket/m/"),
    environ={},
    clock=lambda: FROZEN_EPOCH,
)


def test_signer_caches_follow_the_clock() -> None:
    """The signing key (per day), X-Amz-Date (per second) and a form's expiration are
    cached: one long-lived signer gives, at every instant, what a new one gives."""
    dsn = f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.eu-west-1.amazonaws.com/m/?qs_auth=true"
    config = parse_dsn(dsn)
    midnight = datetime.datetime(2026, 11, 25, tzinfo=datetime.timezone.utc).timestamp()
    now = [FROZEN_EPOCH]
    kept = make_resolver(config, environ={}, clock=lambda: now[0])
    for instant in (FROZEN_EPOCH, FROZEN_EPOCH + 0.5, FROZEN_EPOCH + 1, midnight - 0.1, midnight):
        now[0] = instant
        new = make_resolver(config, environ={}, clock=lambda instant=instant: instant)
        for expires in (None, 60, 61):
            assert kept.url(KEY, expires=expires) == new.url(KEY, expires=expires)
            assert kept.url(KEY, download_name="é.pdf") == new.url(KEY, download_name="é.pdf")
            assert kept.upload_url(KEY, expires=expires) == new.upload_url(KEY, expires=expires)
            form = kept.upload_form("in/", expires=expires, max_size=10)
            assert form == new.upload_form("in/", expires=expires, max_size=10)
