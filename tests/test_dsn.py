"""parse_dsn: real-world DSNs per scheme, round trips, errors, redaction, properties."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from storage_dsn import (
    InvalidDSNError,
    StorageConfig,
    StorageDSNError,
    UnknownSchemeError,
    parse_dsn,
)

# (id, dsn, protocol, root, selected options, public_url)
CASES: list[tuple[str, str, str, str, dict[str, Any], str | None]] = [
    ("file-abs", "file:///data/media/?url=%2Fmedia%2F", "file", "/data/media", {}, "/media/"),
    ("file-localhost", "file://localhost/data/media/", "file", "/data/media", {}, None),
    ("file-unquoted-url", "file:///srv/m?url=/media/", "file", "/srv/m", {}, "/media/"),
    (
        "file-cdn",
        "file:///srv/m/?url=https%3A%2F%2Fcdn.example.org%2Fm",
        "file",
        "/srv/m",
        {},
        "https://cdn.example.org/m/",
    ),
    ("file-fsync", "file:///srv/m/?fsync=true", "file", "/srv/m", {"fsync": True}, None),
    ("memory", "memory://demo/media/", "memory", "/demo/media", {}, None),
    (
        "memory-domain",
        "memory://demo/media/?domain=cdn.example.com",
        "memory",
        "/demo/media",
        {},
        "https://cdn.example.com/media/",
    ),
    (
        "s3-regional",
        "s3://KEY:SECRET@my-bucket.s3.eu-central-1.amazonaws.com/?auth=s3v4&domain=cdn.example.com",
        "s3",
        "my-bucket",
        {
            "key": "KEY",
            "secret": "SECRET",
            "endpoint_url": "https://s3.eu-central-1.amazonaws.com",
            "client_kwargs": {"region_name": "eu-central-1"},
            "config_kwargs": {"signature_version": "s3v4"},
        },
        "https://cdn.example.com/",
    ),
    (
        "s3-regional-prefix",
        "s3://K:S@my-bucket.s3.eu-central-1.amazonaws.com/media/",
        "s3",
        "my-bucket/media",
        {"client_kwargs": {"region_name": "eu-central-1"}},
        "https://my-bucket.s3.eu-central-1.amazonaws.com/media/",
    ),
    (
        "s3-legacy-dash",
        "s3://K:S@bucket.s3-eu-west-1.amazonaws.com/",
        "s3",
        "bucket",
        {
            "endpoint_url": "https://s3.eu-west-1.amazonaws.com",
            "client_kwargs": {"region_name": "eu-west-1"},
        },
        "https://bucket.s3.eu-west-1.amazonaws.com/",
    ),
    (
        "s3-global",
        "s3://K:S@bucket.s3.amazonaws.com/",
        "s3",
        "bucket",
        {"endpoint_url": "https://s3.amazonaws.com", "client_kwargs": {"region_name": "us-east-1"}},
        "https://bucket.s3.amazonaws.com/",
    ),
    (
        "s3-dotted",
        "s3://K:S@my.dotted.bucket.s3-us-west-2.amazonaws.com/",
        "s3",
        "my.dotted.bucket",
        {"config_kwargs": {"s3": {"addressing_style": "path"}}},
        "https://s3.us-west-2.amazonaws.com/my.dotted.bucket/",
    ),
    (
        "s3-fips",
        "s3://K:S@bucket.s3-fips.us-gov-west-1.amazonaws.com/p/",
        "s3",
        "bucket/p",
        {"endpoint_url": "https://s3-fips.us-gov-west-1.amazonaws.com"},
        "https://bucket.s3-fips.us-gov-west-1.amazonaws.com/p/",
    ),
    (
        "s3-dualstack",
        "s3://K:S@bucket.s3.dualstack.ap-south-1.amazonaws.com/",
        "s3",
        "bucket",
        {"endpoint_url": "https://s3.dualstack.ap-south-1.amazonaws.com"},
        "https://bucket.s3.dualstack.ap-south-1.amazonaws.com/",
    ),
    (
        "s3-accesspoint",
        "s3://K:S@photos-123456789012.s3-accesspoint.eu-west-1.amazonaws.com/media/",
        "s3",
        "arn:aws:s3:eu-west-1:123456789012:accesspoint/photos/media",
        {"client_kwargs": {"region_name": "eu-west-1"}},
        "https://photos-123456789012.s3-accesspoint.eu-west-1.amazonaws.com/media/",
    ),
    (
        "s3-aws-path-style",
        "s3://K:S@s3.eu-west-1.amazonaws.com/bucket/media/",
        "s3",
        "bucket/media",
        {"config_kwargs": {"s3": {"addressing_style": "path"}}},
        "https://s3.eu-west-1.amazonaws.com/bucket/media/",
    ),
    (
        "s3-exoscale",
        "s3://K:S@bucket.sos-ch-dk-2.exo.io/",
        "s3",
        "bucket",
        {"endpoint_url": "https://sos-ch-dk-2.exo.io", "client_kwargs": {"region_name": "ch-dk-2"}},
        "https://bucket.sos-ch-dk-2.exo.io/",
    ),
    (
        "s3-digitalocean",
        "s3://K:S@b.nyc3.digitaloceanspaces.com/?url=https%3A%2F%2Fcdn.example.org%2Fx%2F",
        "s3",
        "b",
        {
            "endpoint_url": "https://nyc3.digitaloceanspaces.com",
            "client_kwargs": {"region_name": "nyc3"},
        },
        "https://cdn.example.org/x/",
    ),
    (
        "s3-compatible-region",
        "s3://K:S@bucket.sos-ch-dk-2.exo.io/?region_name=ch-gva-2",
        "s3",
        "bucket",
        {"client_kwargs": {"region_name": "ch-gva-2"}},
        "https://bucket.sos-ch-dk-2.exo.io/",
    ),
    (
        "s3-ip-port",
        "s3://K:S@10.0.0.5:9000/bucket/prefix/",
        "s3",
        "bucket/prefix",
        {
            "endpoint_url": "https://10.0.0.5:9000",
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        },
        "https://10.0.0.5:9000/bucket/prefix/",
    ),
    (
        "s3-http-minio",
        "s3+http://K:S@127.0.0.1:9000/bucket/prefix/",
        "s3",
        "bucket/prefix",
        {"endpoint_url": "http://127.0.0.1:9000", "client_kwargs": {"region_name": "us-east-1"}},
        "http://127.0.0.1:9000/bucket/prefix/",
    ),
    (
        "s3-http-localhost",
        "s3+http://K:S@localhost/bucket/",
        "s3",
        "bucket",
        {"endpoint_url": "http://localhost"},
        "http://localhost/bucket/",
    ),
    (
        "s3-quoted-secret",
        "s3://AKIA:ab%2Fcd%2Bef%3D@bucket.s3.amazonaws.com/",
        "s3",
        "bucket",
        {"key": "AKIA", "secret": "ab/cd+ef="},
        "https://bucket.s3.amazonaws.com/",
    ),
    (
        "s3-no-credentials",
        "s3://bucket.s3.eu-west-1.amazonaws.com/",
        "s3",
        "bucket",
        {"client_kwargs": {"region_name": "eu-west-1"}},
        "https://bucket.s3.eu-west-1.amazonaws.com/",
    ),
    (
        "s3-acl-options",
        "s3://K:S@bucket.s3.amazonaws.com/?acl=public-read&option.max_concurrency=4&option.anon=false",
        "s3",
        "bucket",
        {"s3_additional_kwargs": {"ACL": "public-read"}, "max_concurrency": 4, "anon": False},
        "https://bucket.s3.amazonaws.com/",
    ),
    (
        "s3-endpoint-override",
        "s3://K:S@bucket.s3.amazonaws.com/?endpoint_url=http%3A%2F%2F127.0.0.1%3A5000",
        "s3",
        "bucket",
        {
            "endpoint_url": "http://127.0.0.1:5000",
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        },
        "http://127.0.0.1:5000/bucket/",
    ),
    (
        "gs",
        "gs://bucket/prefix/?project=P",
        "gcs",
        "bucket/prefix",
        {"project": "P"},
        "https://storage.googleapis.com/bucket/prefix/",
    ),
    (
        "gcs-token",
        "gcs://bucket/?option.token=anon",
        "gcs",
        "bucket",
        {"token": "anon"},
        "https://storage.googleapis.com/bucket/",
    ),
    (
        "gs-endpoint",
        "gs://bucket/p/?endpoint_url=https%3A%2F%2Fstorage.example.net%2F",
        "gcs",
        "bucket/p",
        {"endpoint_url": "https://storage.example.net"},
        "https://storage.example.net/bucket/p/",
    ),
    (
        "gs-http-emulator",
        "gs+http://127.0.0.1:4443/bucket_1/a/b/?project=test",
        "gcs",
        "bucket_1/a/b",
        {"endpoint_url": "http://127.0.0.1:4443", "anonymous": True, "project": "test"},
        "http://127.0.0.1:4443/bucket_1/a/b/",
    ),
    (
        "gs-http-with-token",
        "gs+http://localhost/bucket/?option.token=%2Fkeys%2Fsa.json",
        "gcs",
        "bucket",
        {"endpoint_url": "http://localhost", "token": "/keys/sa.json"},
        "http://localhost/bucket/",
    ),
    (
        "az-key",
        "az://acct:a2V5a2V5a2V5@blob.core.windows.net/container/prefix/",
        "abfs",
        "container/prefix",
        {"account_name": "acct", "account_key": "a2V5a2V5a2V5"},
        "https://acct.blob.core.windows.net/container/prefix/",
    ),
    (
        "az-base64-sas",
        # base64 of "sv=2022-11-02&ss=b&sig=abc%2Fdef" (Divio's form), percent-encoded '='
        "abfs://acct:c3Y9MjAyMi0xMS0wMiZzcz1iJnNpZz1hYmMlMkZkZWY%3D@blob.core.windows.net/c/",
        "abfs",
        "c",
        {"account_name": "acct", "sas_token": "sv=2022-11-02&ss=b&sig=abc%2Fdef"},
        "https://acct.blob.core.windows.net/c/",
    ),
    (
        "az-http-emulator",
        "az+http://devstoreaccount1:a2V5a2V5a2V5@127.0.0.1:10000/media/site/",
        "abfs",
        "media/site",
        {
            "account_name": "devstoreaccount1",
            "account_key": "a2V5a2V5a2V5",
            "endpoint_url": "http://127.0.0.1:10000/devstoreaccount1",
        },
        "http://127.0.0.1:10000/devstoreaccount1/media/site/",
    ),
    (
        "az-endpoint-url",
        "az://acct:a2V5@blob.core.windows.net/c/p/?endpoint_url=https%3A%2F%2Fazurite.test%2Facct%2F",
        "abfs",
        "c/p",
        {"account_name": "acct", "endpoint_url": "https://azurite.test/acct"},
        "https://azurite.test/acct/c/p/",
    ),
    (
        "az-account-host",
        "az://acct.blob.core.windows.net/c/?option.connection_string=AccountKey%3Da2V5",
        "abfs",
        "c",
        {"account_name": "acct", "connection_string": "AccountKey=a2V5"},
        "https://acct.blob.core.windows.net/c/",
    ),
    (
        "sftp",
        "sftp://user:p%40ss@files.example.com:2222/srv/media/",
        "sftp",
        "/srv/media",
        {"host": "files.example.com", "port": 2222, "username": "user", "password": "p@ss"},
        None,
    ),
]


def _subset(options: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return all(k in options and _subset(options[k], v) for k, v in expected.items())
    return bool(options == expected)


@pytest.mark.parametrize(
    ("dsn", "protocol", "root", "options", "public_url"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
class TestRealWorldDSNs:
    def test_parses(
        self, dsn: str, protocol: str, root: str, options: dict[str, Any], public_url: str | None
    ) -> None:
        """Protocol, root, options and public URL are what the DSN means."""
        config = parse_dsn(dsn)
        assert config.protocol == protocol
        assert config.root == root
        # A scheme's own settings (file's fsync) sit beside the fsspec options.
        found = {**config.storage_options(), **config.settings}
        assert _subset(found, options), found
        assert config.public_url == public_url

    def test_round_trip(
        self, dsn: str, protocol: str, root: str, options: dict[str, Any], public_url: str | None
    ) -> None:
        """to_dsn() parses back to an equal config with an equal hash."""
        config = parse_dsn(dsn)
        again = parse_dsn(config.to_dsn())
        assert again == config
        assert hash(again) == hash(config)


class TestFileForms:
    def test_relative(self, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """file:relative/ and file:./relative/ resolve against the working directory."""
        monkeypatch.chdir(tmp_path)
        assert parse_dsn("file:data/media/").root == f"{tmp_path}/data/media"
        assert parse_dsn("file:./data/media/?url=/media/").root == f"{tmp_path}/data/media"

    def test_spellings_compare_equal(self) -> None:
        """Two spellings of one storage are equal configs."""
        assert parse_dsn("file:///data/media/") == parse_dsn("file://localhost/data/media")


class TestConfigValue:
    def test_frozen(self) -> None:
        """Configs are immutable, options included."""
        config = parse_dsn("s3://K:S@bucket.s3.amazonaws.com/")
        with pytest.raises(AttributeError):
            config.root = "other"  # type: ignore[misc]
        with pytest.raises(TypeError):
            config.options["key"] = "other"  # type: ignore[index]

    def test_storage_options_is_a_copy(self) -> None:
        """storage_options() returns plain dicts that can be changed freely."""
        config = parse_dsn("s3://K:S@bucket.s3.amazonaws.com/")
        options = config.storage_options()
        options["client_kwargs"]["region_name"] = "elsewhere"
        assert config.options["client_kwargs"]["region_name"] == "us-east-1"

    def test_hand_built_config_has_no_dsn(self) -> None:
        """A config not made by parse_dsn says so instead of inventing a DSN."""
        config = StorageConfig(scheme="memory", protocol="memory", root="/x")
        with pytest.raises(StorageDSNError, match="parse_dsn"):
            config.to_dsn()

    def test_signed_and_expires(self) -> None:
        """qs_auth, acl=private and expires set the presigning fields."""
        assert parse_dsn("s3://K:S@b.s3.amazonaws.com/?qs_auth=true").signed_urls
        private = parse_dsn("s3://K:S@b.s3.amazonaws.com/?acl=private&expires=60")
        assert private.signed_urls
        assert private.url_expires == 60
        assert not parse_dsn("s3://K:S@b.s3.amazonaws.com/").signed_urls


ERRORS = [
    ("no-scheme", "/data/media", "must start with a scheme"),
    ("unknown-param", "file:///x/?colour=blue", "accepted: domain, fsync, option.NAME, url"),
    ("unknown-s3-param", "s3://K:S@b.s3.amazonaws.com/?signature=v4", "accepted:"),
    ("duplicate-param", "file:///x/?url=/a/&url=/b/", "given twice"),
    ("bad-auth", "s3://K:S@b.s3.amazonaws.com/?auth=v2", "'s3v4' or 's3'"),
    ("bad-style", "s3://K:S@b.s3.amazonaws.com/?addressing_style=dns", "auto, virtual or path"),
    ("bad-acl", "s3://K:S@b.s3.amazonaws.com/?acl=everyone", "must be one of"),
    ("bad-expires", "s3://K:S@b.s3.amazonaws.com/?expires=0", "seconds from 1"),
    ("too-long-expires", "s3://K:S@b.s3.amazonaws.com/?expires=604801", "seconds from 1"),
    ("bad-qs-auth", "s3://K:S@b.s3.amazonaws.com/?qs_auth=yes", "'true' or 'false'"),
    ("unquoted-slash", "s3://KEY:ab/cd@bucket.s3.amazonaws.com/", "percent-encode"),
    ("numeric-slash-secret", "sftp://user:0000000000/A@host/", "percent-encode"),
    ("question-in-secret", "s3://KEY:12?x@bucket.s3.amazonaws.com/", "percent-encode"),
    ("hash-in-secret", "s3://KEY:ab#cd@bucket.s3.amazonaws.com/", "%23"),
    ("key-without-secret", "s3://KEY@bucket.s3.amazonaws.com/", "ACCESS_KEY:SECRET_KEY"),
    ("s3-no-host", "s3:///bucket/", "needs a host"),
    ("s3-bare-host", "s3://K:S@localhost:9000/", "first path segment"),
    ("s3-single-label", "s3://K:S@bucket/", "BUCKET.ENDPOINT"),
    ("engine", "s3://K:S@b.s3.amazonaws.com/?engine=boto", "engine"),
    (
        "obstore-acl",
        "s3://K:S@b.s3.amazonaws.com/?engine=obstore&acl=public-read",
        "cannot set ACLs",
    ),
    ("obstore-v2", "s3://K:S@b.s3.amazonaws.com/?engine=obstore&auth=s3", "s3v4 only"),
    ("javascript-url", "file:///x/?url=javascript%3Aalert(1)", "http(s) URL or a path"),
    ("protocol-relative-url", "file:///x/?url=%2F%2Fevil.example", "single '/'"),
    (
        "url-with-credentials",
        "file:///x/?url=https%3A%2F%2Fu%3Ap%40cdn.example%2F",
        "no credentials",
    ),
    ("url-and-domain", "file:///x/?url=/m/&domain=cdn.example.com", "not both"),
    ("bad-domain", "file:///x/?domain=https%3A%2F%2Fcdn.example.com", "host name"),
    ("file-host", "file://server/share/", "not a host"),
    ("file-credentials", "file://u:p@localhost/x/", "no user name"),
    ("memory-empty", "memory://", "needs a name"),
    ("azure-no-account", "az://blob.core.windows.net/c/", "account name"),
    ("azure-other-host", "az://acct:k@example.com/c/", "blob.core.windows.net"),
    ("azure-no-container", "az://acct:k@blob.core.windows.net/", "container"),
    ("azure-http-no-account", "az+http://127.0.0.1:10000/c/", "account name"),
    ("azure-http-no-host", "az+http://acct:k@/c/", "az+http://ACCOUNT:KEY@HOST:PORT"),
    (
        "azure-endpoint-ftp",
        "az://acct:k@x/c/?endpoint_url=ftp%3A%2F%2Fh",
        "http(s)",
    ),
    (
        "azure-endpoint-credentials",
        "az://acct:k@blob.core.windows.net/c/?endpoint_url=http%3A%2F%2Fu%3Ap%40h%2Facct",
        "without credentials",
    ),
    ("azure-endpoint-bad-port", "az://acct:k@x/c/?endpoint_url=http%3A%2F%2Fh%3A0", "http(s)"),
    ("gcs-credentials", "gs://u:p@bucket/", "credentials"),
    ("gcs-port", "gs://bucket:4443/", "gs+http://HOST:PORT"),
    ("gcs-bucket-name", "gs://b/", "bucket name"),
    ("gcs-endpoint", "gs://bucket/?endpoint_url=storage.example.net", "endpoint_url"),
    ("gs-http-no-bucket", "gs+http://127.0.0.1:4443/", "gs+http://HOST:PORT/bucket"),
    ("gs-http-endpoint", "gs+http://127.0.0.1:4443/b1/?endpoint_url=http%3A%2F%2Fx", "endpoint"),
    ("sftp-no-host", "sftp:///srv/", "needs a host"),
    ("newline", "file:///x/\n?url=/m/", "control characters"),
    ("bad-utf8", "s3://K:%ff@b.s3.amazonaws.com/", "UTF-8"),
]


@pytest.mark.parametrize(("dsn", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(dsn: str, message: str) -> None:
    """Each mistake is an InvalidDSNError that says what is wrong and what is accepted."""
    with pytest.raises(InvalidDSNError) as info:
        parse_dsn(dsn)
    assert message in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None


def test_unknown_scheme_lists_registered() -> None:
    """An unknown scheme names every registered scheme."""
    with pytest.raises(UnknownSchemeError) as info:
        parse_dsn("ftp://host/path/")
    for name in (
        "file",
        "memory",
        "s3",
        "s3+http",
        "gs",
        "gcs",
        "gs+http",
        "az",
        "abfs",
        "az+http",
        "sftp",
    ):
        assert name in info.value.known
    assert "s3+http" in str(info.value)


def test_not_a_string() -> None:
    """A non-string DSN is an InvalidDSNError, not a TypeError."""
    with pytest.raises(InvalidDSNError):
        parse_dsn(None)  # type: ignore[arg-type]


class TestRedaction:
    SECRETS = ("SECRET", "ab/cd+ef=", "tok3n", "p@ss", "sig=abc", "a2V5a2V5", "c2lnbmF0")

    @pytest.mark.parametrize(
        "dsn",
        [
            "s3://KEY:SECRET@my-bucket.s3.eu-central-1.amazonaws.com/?auth=s3v4",
            "s3://AKIA:ab%2Fcd%2Bef%3D@bucket.s3.amazonaws.com/?token=tok3n",
            "s3://AKIA:SECRET@bucket.s3.amazonaws.com/?option.secret=SECRET&option.token=tok3n",
            "sftp://user:p%40ss@files.example.com:2222/srv/media/",
            "az://acct:sv%3D1%26sig%3Dabc@blob.core.windows.net/c/",
            "gs://bucket/?option.token=tok3n",
            "az+http://devstoreaccount1:a2V5a2V5@127.0.0.1:10000/c/",
            # A connection string's key and SAS, percent-encoded or not.
            "az+http://acct@127.0.0.1:10000/c/?option.connection_string="
            "DefaultEndpointsProtocol%3Dhttp%3BAccountName%3Dacct%3BAccountKey%3Da2V5a2V5%3B",
            "az://acct@blob.core.windows.net/c/?option.connection_string="
            "AccountName=acct;AccountKey=a2V5a2V5;BlobEndpoint=http://h/acct",
            "az://acct@blob.core.windows.net/c/?option.connection_string=BlobEndpoint%3D"
            "https%3A%2F%2Fh%2F%3BSharedAccessSignature%3Dsv%3D1%26sig%3Dc2lnbmF0%253D",
            "az://acct@blob.core.windows.net/c/?option.credential=sv%3D1%26sig%3Dc2lnbmF0",
        ],
    )
    def test_str_repr_redacted(self, dsn: str) -> None:
        """str, repr and redacted() never show a secret, in any encoding."""
        config = parse_dsn(dsn)
        for text in (str(config), repr(config), config.redacted()):
            assert "***" in text
            for secret in self.SECRETS:
                assert secret not in text
                assert secret.replace("/", "%2F").replace("+", "%2B") not in text

    @pytest.mark.parametrize(
        ("value", "secrets"),
        [
            ("AccountName%3Da%3BAccountKey%3Da2V5a2V5%3B", ["a2V5a2V5"]),
            ("SharedAccessSignature=sv%3D1%26sig%3Dc2ln%252B", ["sv=1&sig=c2ln%2B", "c2ln+"]),
            ("sv=1%26sig%3Dc2ln", ["c2ln"]),
        ],
        ids=["account-key", "sas", "bare-sas"],
    )
    def test_secret_values_inside_options(self, value: str, secrets: list[str]) -> None:
        """secret_values() finds the secrets inside a connection string or SAS token."""
        from storage_dsn.dsn import secret_values

        config = parse_dsn(f"az://acct@blob.core.windows.net/c/?option.connection_string={value}")
        found = secret_values(config)
        for secret in secrets:
            assert secret in found

    def test_connection_string_keeps_the_rest(self) -> None:
        """Only the secret fields of a connection string are masked."""
        text = parse_dsn(
            "az://acct@blob.core.windows.net/c/?option.connection_string="
            "AccountName%3Dacct%3BAccountKey%3Dk3y%3D%3D%3BBlobEndpoint%3Dhttp%3A%2F%2Fh%2Facct"
        ).redacted()
        assert text.endswith(
            "connection_string=AccountName=acct;AccountKey=***;BlobEndpoint=http://h/acct"
        )

    def test_keeps_what_helps(self) -> None:
        """The redacted DSN keeps the access key id, host and parameters."""
        text = parse_dsn("s3://KEY:SECRET@b.s3.eu-west-1.amazonaws.com/m/?auth=s3v4").redacted()
        assert text == "s3://KEY:***@b.s3.eu-west-1.amazonaws.com/m/?auth=s3v4"


# --- properties --------------------------------------------------------------------------

DSN_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",))
SECRET = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=12, max_size=30
).filter(lambda s: any(c.isalpha() for c in s))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=DSN_ALPHABET, max_size=80))
def test_any_string_parses_or_raises_storage_error(text: str) -> None:
    """Whatever the input, parse_dsn returns a config or raises a StorageDSNError."""
    with contextlib.suppress(StorageDSNError):
        parse_dsn(text)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["s3", "s3+http", "file", "memory", "gs", "az", "sftp", "nope"]),
    st.text(alphabet=DSN_ALPHABET, max_size=30),
    st.text(alphabet=DSN_ALPHABET, max_size=30),
)
def test_scheme_shaped_strings(scheme: str, middle: str, tail: str) -> None:
    """Scheme-prefixed garbage also parses or raises a StorageDSNError."""
    with contextlib.suppress(StorageDSNError):
        parse_dsn(f"{scheme}://{middle}@{tail}")


@settings(max_examples=300, deadline=None)
@given(
    SECRET,
    st.sampled_from(
        [
            "s3://KEY:{s}@bucket.s3.amazonaws.com/{q}",
            "s3://KEY:{s}@bucket/{q}",
            "s3+http://KEY:{s}@127.0.0.1:9000/{q}",
            "sftp://user:{s}@host/{q}",
            "az://acct:{s}@blob.core.windows.net/{q}",
            "az+http://acct:{s}@127.0.0.1:10000/c/{q}",
            "az://acct@blob.core.windows.net/c/?option.connection_string=AccountKey%3D{s}&{q}",
            "file://u:{s}@localhost/x/{q}",
            "s3://KEY:SECRET@bucket.s3.amazonaws.com/?token={s}&{q}",
        ]
    ),
    st.sampled_from(["", "?x=1", "?auth=v9", "?url=javascript:1", "c/?acl=bad"]),
)
def test_secret_never_in_error_or_repr(secret: str, template: str, query: str) -> None:
    """A generated secret, raw or percent-encoded, appears in no error text or repr."""
    from urllib.parse import quote

    assume(secret not in template + query)
    # The text for the same DSN with the secret blanked out: a "secret" that is a word of
    # the error's own vocabulary (an ACL name, say) proves nothing.
    blank = template.format(s="X" * len(secret), q=query)
    try:
        baseline = str(parse_dsn(blank))
    except StorageDSNError as exc:
        baseline = str(exc)
    assume(secret not in baseline)
    for spelled in (secret, quote(secret, safe="")):
        dsn = template.format(s=spelled, q=query)
        try:
            config = parse_dsn(dsn)
        except StorageDSNError as exc:
            text = f"{exc} {repr(exc).partition('(')[2]}"
        else:
            text = f"{config} {repr(config).removeprefix('StorageConfig(')}"
        assert secret not in text
        assert quote(secret, safe="") not in text


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=3, max_size=20).filter(
        lambda b: b[0].isalnum()
    ),
    st.lists(st.text(alphabet="abcdefghij0123456789_-", min_size=1, max_size=8), max_size=3),
    st.sampled_from(["eu-central-1", "us-east-1", "ap-southeast-2"]),
    SECRET,
)
def test_s3_round_trip_property(bucket: str, prefix: list[str], region: str, secret: str) -> None:
    """Generated S3 DSNs round-trip through to_dsn() and keep their parts."""
    from urllib.parse import quote

    path = "/".join(prefix)
    # A "secret" that is part of the DSN's public text (the host: "amazonaws.co") cannot
    # be told from it in a repr; only the rest proves anything.
    host = f"{bucket}.s3.{region}.amazonaws.com/{path}"
    assume(secret not in f"s3://KEY:***@{host}')")
    dsn = f"s3://KEY:{quote(secret, safe='')}@{host}"
    config = parse_dsn(dsn)
    assert config.root == f"{bucket}/{path}".rstrip("/")
    assert config.options["secret"] == secret
    assert parse_dsn(config.to_dsn()) == config
    assert secret not in repr(config).removeprefix("StorageConfig(")


def test_parse_does_no_io(tmp_path: Any) -> None:
    """Parsing a file DSN does not create or touch its directory."""
    parse_dsn(f"file://{tmp_path}/never/created/")
    assert not os.path.exists(tmp_path / "never")
