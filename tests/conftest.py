"""Shared fixtures: a clean registry per test, and storages on every backend.

S3 runs in-process under moto's ``mock_aws`` and over real HTTP against a moto server in
its own process on a free loopback port; the servers are in ``tests/servers/``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from storage_dsn import Storage, open_storage, redaction, registry, storage
from tests.apps import app
from tests.servers.azurite import ACCOUNT, QUOTED_ACCOUNT_KEY, azurite, blob_service
from tests.servers.faults import fault_proxy, fault_proxy_session
from tests.servers.ftp import ftp_server
from tests.servers.gcs import fake_gcs, gcs_proxy
from tests.servers.moto import KEY_ID, QUOTED_SECRET, SECRET, make_bucket, mock_s3, moto_server
from tests.servers.seaweedfs import seaweedfs
from tests.servers.sshd import SFTP_WRONG_PASSWORD, sshd_server

__all__ = [
    "KEY_ID",
    "QUOTED_SECRET",
    "SECRET",
    "app",
    "azurite",
    "fake_gcs",
    "fault_proxy",
    "fault_proxy_session",
    "ftp_server",
    "gcs_proxy",
    "make_bucket",
    "mock_s3",
    "moto_server",
    "seaweedfs",
    "sshd_server",
    "write_elsewhere",
    "write_then_fail",
]


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with only the built-in schemes, no cached storage, no real AWS."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "DEFAULT_STORAGE_DSN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # No real Google either: no credentials or emulator from the host, and google-auth's
    # metadata-server probe (169.254.169.254) pointed at a closed loopback port.
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    registry._reset()
    storage.clear_cache()
    redaction._reset()
    yield
    registry._reset()
    storage.clear_cache()
    redaction._reset()


@pytest.fixture
def without_gcsfs(monkeypatch: pytest.MonkeyPatch) -> None:
    """gcsfs looks uninstalled (the test extra installs it): for missing-extra errors."""
    from storage_dsn.schemes import base

    monkeypatch.setitem(sys.modules, "gcsfs", None)  # find_spec answers None
    monkeypatch.setattr(base, "_installed", set())


def _file(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"file://{tmp_path}/media/?url=%2Fmedia%2F"


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"memory://{uuid.uuid4().hex}/media/?url=%2Fmedia%2F"


def _s3_mock(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    request.getfixturevalue("mock_s3")
    bucket = make_bucket(None)
    # engine=s3fs: the in-process mock answers botocore only, so nothing may switch this
    # storage to obstore (Storage.for_transfer), which would go to the real AWS.
    return f"s3://{KEY_ID}:{QUOTED_SECRET}@{bucket}.s3.amazonaws.com/media/?engine=s3fs"


def _s3_server(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    endpoint = request.getfixturevalue("moto_server")
    bucket = make_bucket(endpoint)
    host = endpoint.removeprefix("http://")
    return f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{host}/{bucket}/media/"


def _s3_obstore(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # obstore talks HTTP itself: only the moto server can answer it, not mock_aws.
    return _s3_server(request, tmp_path) + "?engine=obstore"


def _s3_seaweedfs(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    server = request.getfixturevalue("seaweedfs")
    return f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{server.host}/{server.new_prefix()}/media/"


def _s3_seaweedfs_obstore(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _s3_seaweedfs(request, tmp_path) + "?engine=obstore"


def _azure(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    server = request.getfixturevalue("azurite")
    container = server.new_container()
    return f"az+http://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@{server.host}/{container}/media/"


def _sftp(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    server = request.getfixturevalue("sshd_server")
    return server.dsn(server.new_directory())


def _gcs(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    server = request.getfixturevalue("fake_gcs")
    return f"gs+http://{server.host}/{server.new_bucket()}/media/"


#: The kinds of storage the contract suite runs on, each a fresh empty storage per test:
#: kind -> the DSN of a new one (its server is started once per session).
KINDS: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "file": _file,
    "memory": _memory,
    "s3-mock": _s3_mock,
    "s3-server": _s3_server,
    "s3-obstore": _s3_obstore,
    "s3-seaweedfs": _s3_seaweedfs,
    "s3-seaweedfs-obstore": _s3_seaweedfs_obstore,
    "azure": _azure,
    "sftp": _sftp,
    "gcs": _gcs,
}
BACKENDS = list(KINDS)
#: Kinds whose stat() reads the content type the server stored (others guess from the key).
STORED_TYPES = {
    "s3-mock",
    "s3-server",
    "s3-obstore",
    "s3-seaweedfs",
    "s3-seaweedfs-obstore",
    "azure",
    "gcs",
}


def _wrong_s3_secret(dsn: str) -> str:
    return dsn.replace(f"{KEY_ID}:{QUOTED_SECRET}@", f"{KEY_ID}:{QUOTED_SECRET}x@")


def _wrong_azure_key(dsn: str) -> str:
    # Still a valid base64 key of the right length, so the server, not the client, refuses.
    return dsn.replace(f"{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@", f"{ACCOUNT}:A{QUOTED_ACCOUNT_KEY[1:]}@")


def _wrong_sftp_login(dsn: str) -> str:
    # The server's users have no password we could know (root's is never ours to set):
    # the wrong secret is a key it does not accept, plus a password it refuses.
    good = "client_ed25519"
    assert good in dsn
    user, _, rest = dsn.partition("@")
    return f"{user}:{quote(SFTP_WRONG_PASSWORD, safe='')}@{rest.replace(good, 'wrong_ed25519')}"


#: Kinds whose server checks credentials: kind -> the DSN with a wrong secret.
WRONG_CREDENTIALS: dict[str, Callable[[str], str]] = {
    "s3-seaweedfs": _wrong_s3_secret,
    "s3-seaweedfs-obstore": _wrong_s3_secret,
    "azure": _wrong_azure_key,
    "sftp": _wrong_sftp_login,
}


@pytest.fixture(params=BACKENDS)
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """A fresh, empty storage on each backend."""
    return request.getfixturevalue("storage_factory")(request.param)


@pytest.fixture
def storage_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Storage]:
    """Build a fresh storage of a kind (see KINDS), with extra query parameters."""

    def build(kind: str, query: str = "") -> Storage:
        dsn = KINDS[kind](request, tmp_path)
        if query:
            dsn += ("&" if "?" in dsn else "?") + query
        return open_storage(dsn)

    return build


def write_elsewhere(
    storage: Storage, key: str, data: bytes, content_type: str | None = None
) -> None:
    """Write ``key`` the way another program would: not through this storage's objects.

    A key ending in ``/`` writes what other tools leave for a directory (an S3 folder
    marker, a local directory).
    """
    scheme = storage.config.scheme
    if scheme in ("s3", "s3+http"):
        import boto3

        from storage_dsn.schemes.s3 import location

        where = location(storage.config)
        client = boto3.client(
            "s3", endpoint_url=where.endpoint, region_name=where.region or "us-east-1"
        )
        extra = {"ContentType": content_type} if content_type else {}
        client.put_object(Bucket=where.bucket, Key=f"{where.prefix}/{key}", Body=data, **extra)
    elif scheme in ("az", "abfs", "az+http"):
        _write_azure_blob(storage, key, data, content_type)
    elif scheme in ("gs", "gcs", "gs+http"):
        _write_with_google_client(storage, key, data, content_type)
    elif scheme == "file":
        path = Path(storage.config.root, key)
        if key.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    elif scheme == "sftp":
        _sftp_write(storage, key, data)
    elif scheme == "memory":  # one process, one store
        if not key.endswith("/"):
            storage.fs.pipe_file(key, data)
    else:  # pragma: no cover
        raise NotImplementedError(scheme)


def _write_azure_blob(storage: Storage, key: str, data: bytes, content_type: str | None) -> None:
    from azure.storage.blob import ContentSettings

    container, _, prefix = storage.config.root.partition("/")
    service = blob_service(storage.config.settings["endpoint_url"])
    client = service.get_container_client(container)
    name = f"{prefix}/{key}" if prefix else key
    if key.endswith("/"):  # both markers tools leave: "d/", and the Hadoop drivers' "d"
        client.upload_blob(name, b"", overwrite=True)
        client.upload_blob(name[:-1], b"", overwrite=True, metadata={"hdi_isfolder": "true"})
        return
    settings = ContentSettings(content_type=content_type) if content_type else None
    client.upload_blob(name, data, overwrite=True, content_settings=settings)


def _sftp_write(storage: Storage, key: str, data: bytes) -> None:
    """Write over a connection of its own, as another SFTP client would (in place, not
    through a temporary name)."""
    from sshfs import SSHFileSystem

    options = storage.config.storage_options()
    fs = SSHFileSystem(**options, skip_instance_cache=True)
    path = f"{storage.config.root}/{key}"
    if key.endswith("/"):
        fs.makedirs(path, exist_ok=True)
    else:
        fs.pipe_file(path, data)


def _write_with_google_client(
    storage: Storage, key: str, data: bytes, content_type: str | None
) -> None:
    """Google's own client library, anonymous, at the storage's endpoint (a key ending in
    ``/`` is the empty object the Cloud console leaves for a folder)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as google_storage

    bucket, _, prefix = storage.config.root.partition("/")
    client = google_storage.Client(
        project="test",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": storage.config.options["endpoint_url"]},
    )
    blob = client.bucket(bucket).blob(f"{prefix}/{key}" if prefix else key)
    blob.upload_from_string(data, content_type=content_type or "application/octet-stream")


def write_then_fail(storage: Storage, key: str, data: bytes) -> None:
    with storage.open(key, "wb") as f:
        f.write(data)
        raise RuntimeError("crash")
