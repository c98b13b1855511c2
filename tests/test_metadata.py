"""``Storage.update_metadata`` and ``storage-dsn update-metadata``: the DSN's upload
settings and guessed content types re-applied to stored objects, in place, bytes unchanged.

What each server proves: moto stores Cache-Control, the storage class, SSE and ACL grants
(and keeps user metadata through a replacing copy); SeaweedFS keeps Cache-Control and the
storage class; Azurite keeps a blob's properties, its stored MD5 among them; fake-gcs-server
applies ``objects.patch``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage_dsn import Storage
from storage_dsn.backend import MetadataFix
from storage_dsn.cli import main
from storage_dsn.errors import InvalidKeyError, MissingBackendError
from storage_dsn.metadata import MetadataEvent, update_all
from storage_dsn.schemes.s3.metadata import plan
from tests.conftest import QUOTED_SECRET, SECRET, write_elsewhere
from tests.servers.azurite import blob_service

CACHE = "public, max-age=60"
QUERY = "cache_control=public%2C%20max-age%3D60"
# A wrong type every server keeps (SeaweedFS stores application/octet-stream as the type
# its extension says).
WRONG = "text/plain"
DATA = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def stored(storage: Storage, key: str) -> dict[str, Any]:
    """The object's content type, Cache-Control and MD5 as the server keeps them, asked with
    the server's own client (not through the storage)."""
    scheme = storage.config.scheme
    if scheme.startswith("s3"):
        from tests.test_uploads import head

        found = head(storage, key)
        return {
            "content_type": found.get("ContentType"),
            "cache_control": found.get("CacheControl"),
            "md5": found["ETag"].strip('"'),
            "head": found,
        }
    if scheme.startswith("az"):
        container, _, prefix = storage.config.root.partition("/")
        service = blob_service(storage.config.settings["endpoint_url"])
        props = service.get_blob_client(container, f"{prefix}/{key}").get_blob_properties()
        settings = props.content_settings
        return {
            "content_type": settings.content_type,
            "cache_control": settings.cache_control,
            "md5": bytes(settings.content_md5 or b"").hex(),
        }
    info = storage.fs.info(key)
    return {
        "content_type": info.get("contentType"),
        "cache_control": info.get("cacheControl"),
        "md5": base64.b64decode(info["md5Hash"]).hex(),
    }


CLOUD = ["s3-mock", "s3-server", "s3-obstore", "s3-seaweedfs", "azure", "gcs"]


class TestEveryBackend:
    @pytest.fixture(params=CLOUD)
    def storage(self, request: pytest.FixtureRequest, storage_factory: Any) -> Storage:
        built: Storage = storage_factory(request.param, QUERY)
        return built

    def test_fixes_type_and_cache_control(self, storage: Storage) -> None:
        """An image stored with the wrong type and no Cache-Control gets both; bytes stay."""
        write_elsewhere(storage, "photos/a.png", DATA, WRONG)
        write_elsewhere(storage, "notes.txt", b"text", "text/plain")
        before = stored(storage, "photos/a.png")
        result = storage.update_metadata()
        assert result.checked == 2
        assert result.updated == {
            "notes.txt": ("cache-control",),
            "photos/a.png": ("content-type", "cache-control"),
        }
        assert not result.failed
        assert not result.skipped
        for key, content_type in (("photos/a.png", "image/png"), ("notes.txt", "text/plain")):
            after = stored(storage, key)
            assert after["content_type"] == content_type
            assert after["cache_control"] == CACHE
        assert storage.read_bytes("photos/a.png") == DATA
        assert stored(storage, "photos/a.png")["md5"] == before["md5"]
        assert before["md5"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()

    def test_second_run_changes_nothing(self, storage: Storage) -> None:
        """Objects already right are counted as such, and a dry run changes nothing."""
        write_elsewhere(storage, "a.png", DATA, WRONG)
        dry = storage.update_metadata(dry_run=True)
        assert dry.updated == {"a.png": ("content-type", "cache-control")}
        assert stored(storage, "a.png")["content_type"] == WRONG
        storage.update_metadata()
        again = storage.update_metadata()
        assert (again.checked, again.unchanged, again.updated) == (1, 1, {})

    def test_prefix_and_progress(self, storage: Storage) -> None:
        """Only keys under the prefix are touched; progress hears of each."""
        write_elsewhere(storage, "in/a.png", DATA, WRONG)
        write_elsewhere(storage, "out/b.png", DATA, WRONG)
        events: list[MetadataEvent] = []
        result = storage.update_metadata("in/", progress=events.append)
        assert list(result.updated) == ["in/a.png"]
        assert [(e.key, e.outcome, e.done, e.total) for e in events] == [
            ("in/a.png", "updated", 1, 1)
        ]
        assert stored(storage, "out/b.png")["content_type"] == WRONG


@pytest.mark.s3
class TestS3Settings:
    QUERY = "cache_control=no-cache&storage_class=STANDARD_IA&sse=AES256&acl=public-read"

    def test_all_settings_on_moto(self, storage_factory: Callable[..., Storage]) -> None:
        """ACL, SSE, storage class, Cache-Control and type; user metadata is kept."""
        from tests.test_uploads import client_for

        storage = storage_factory("s3-server", self.QUERY)
        client = client_for(storage)
        bucket, _, prefix = storage.config.root.partition("/")
        client.put_object(
            Bucket=bucket,
            Key=f"{prefix}/a.jpg",
            Body=DATA,
            ContentDisposition="inline",
            Metadata={"owner": "alice"},
        )
        result = storage.update_metadata()
        assert result.updated == {
            "a.jpg": ("content-type", "cache-control", "storage-class", "sse", "acl")
        }
        head = stored(storage, "a.jpg")["head"]
        assert head["ContentType"] == "image/jpeg"
        assert head["CacheControl"] == "no-cache"
        assert head["StorageClass"] == "STANDARD_IA"
        assert head["ServerSideEncryption"] == "AES256"
        assert head["Metadata"] == {"owner": "alice"}
        assert head["ContentDisposition"] == "inline"
        grants = client.get_object_acl(Bucket=bucket, Key=f"{prefix}/a.jpg")["Grants"]
        assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)
        assert storage.read_bytes("a.jpg") == DATA
        assert storage.update_metadata().unchanged == 1

    def test_acl_alone_is_put_without_a_copy(self, storage_factory: Callable[..., Storage]) -> None:
        """An object right but for its ACL gets the ACL; its ETag and time stay."""
        storage = storage_factory("s3-server", "acl=public-read")
        write_elsewhere(storage, "a.png", DATA, "image/png")
        before = stored(storage, "a.png")["head"]
        assert storage.update_metadata().updated == {"a.png": ("acl",)}
        after = stored(storage, "a.png")["head"]
        assert after["LastModified"] == before["LastModified"]

    def test_copy_keeps_stored_grants(self, storage_factory: Callable[..., Storage]) -> None:
        """A DSN without acl= keeps a public object public through the copy."""
        from tests.test_uploads import client_for

        storage = storage_factory("s3-server", QUERY)
        client = client_for(storage)
        bucket, _, prefix = storage.config.root.partition("/")
        client.put_object(Bucket=bucket, Key=f"{prefix}/a.png", Body=DATA, ACL="public-read")
        assert storage.update_metadata().updated == {"a.png": ("content-type", "cache-control")}
        grants = client.get_object_acl(Bucket=bucket, Key=f"{prefix}/a.png")["Grants"]
        assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)

    def test_storage_class_on_seaweedfs(self, storage_factory: Callable[..., Storage]) -> None:
        """SeaweedFS keeps the storage class and Cache-Control a replacing copy sets."""
        query = "cache_control=no-cache&storage_class=STANDARD_IA"
        storage = storage_factory("s3-seaweedfs", query)
        write_elsewhere(storage, "a.css", b"a{}", WRONG)
        assert storage.update_metadata().updated == {
            "a.css": ("content-type", "cache-control", "storage-class")
        }
        head = stored(storage, "a.css")["head"]
        assert (head["ContentType"], head["CacheControl"]) == ("text/css", "no-cache")
        assert head["StorageClass"] == "STANDARD_IA"
        assert storage.read_bytes("a.css") == b"a{}"
        assert storage.update_metadata().unchanged == 1


@pytest.mark.s3
@pytest.mark.parametrize("kind", ["s3-server", "s3-seaweedfs"])
def test_large_objects_are_copied_in_parts(
    storage_factory: Callable[..., Storage], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Past the one-copy limit (lowered here from 5 GiB) the copy is a multipart upload
    of server-side ranges: the new metadata, the same bytes."""
    import storage_dsn.schemes.s3.metadata as s3_metadata

    monkeypatch.setattr(s3_metadata, "MAX_COPY", 2**20)
    monkeypatch.setattr(s3_metadata, "COPY_PART", 5 * 2**20)
    storage = storage_factory(kind, QUERY)
    data = bytes(range(256)) * (11 * 2**12)  # 11 MiB: three parts
    write_elsewhere(storage, "big.png", data, WRONG)
    assert storage.update_metadata().updated == {"big.png": ("content-type", "cache-control")}
    after = stored(storage, "big.png")
    assert (after["content_type"], after["cache_control"]) == ("image/png", CACHE)
    assert after["md5"].endswith("-3")  # a multipart ETag
    assert storage.read_bytes("big.png") == data
    assert storage.update_metadata().unchanged == 1


class TestPlan:
    def test_archived_objects_are_skipped(self) -> None:
        """A GLACIER object cannot be copied before a restore: skipped with the reason;
        an ACL alone is still put."""
        head = {"StorageClass": "GLACIER", "ContentType": "binary/octet-stream"}
        found = plan("old.mp4", head, {"ACL": "public-read"}, {"Grants": []})
        assert found.skipped is not None
        assert "restore it first" in found.skipped
        assert (found.changed, found.copy, found.put_acl) == (["acl"], None, "public-read")

    def test_unset_settings_are_kept(self) -> None:
        """What the DSN leaves out is given back as stored."""
        head = {
            "ContentType": "application/octet-stream",
            "StorageClass": "GLACIER_IR",
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": "arn:aws:kms:eu-west-1:1:key/k",
            "Metadata": {"a": "b"},
        }
        found = plan("x.png", head, {}, None)
        assert found.changed == ["content-type"]
        assert found.copy is not None
        assert found.copy["StorageClass"] == "GLACIER_IR"
        assert found.copy["SSEKMSKeyId"] == "arn:aws:kms:eu-west-1:1:key/k"
        assert found.copy["Metadata"] == {"a": "b"}

    def test_kms_key_by_id_matches_its_arn(self) -> None:
        head = {"ContentType": "image/png", "ServerSideEncryption": "aws:kms"}
        head["SSEKMSKeyId"] = "arn:aws:kms:eu-west-1:1:key/k"
        upload = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k"}
        assert plan("x.png", head, upload, None).changed == []


@pytest.mark.s3
def test_obstore_engine_needs_s3fs(
    storage_factory: Callable[..., Storage], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The obstore engine updates through s3fs; without it, the extra to install."""
    storage = storage_factory("s3-obstore", QUERY)
    write_elsewhere(storage, "a.png", DATA, WRONG)
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(MissingBackendError, match=r"storage-dsn\[s3\]"):
        storage.update_metadata()


class TestLoop:
    def test_outcomes(self) -> None:
        """Each answer lands in its place; errors are one line; the rest go on."""

        def fix(key: str) -> MetadataFix:
            if key == "boom":
                raise OSError("refused\nsecond line")
            if key == "bad\\key":
                raise InvalidKeyError("backslash in key")
            return {"big": MetadataFix(skipped="too big"), "a": MetadataFix(("acl",))}.get(
                key, MetadataFix()
            )

        result = update_all(["a", "bad\\key", "big", "boom", "ok"], fix, jobs=2)
        assert result.checked == 5
        assert result.updated == {"a": ("acl",)}
        assert result.skipped == {"bad\\key": "backslash in key", "big": "too big"}
        assert result.failed == {"boom": "OSError: refused"}
        assert result.unchanged == 1

    def test_events_in_key_order(self) -> None:
        """However the requests finish, progress hears of the keys in order, each once."""
        keys = [f"k{i:03}" for i in range(100)]
        events: list[MetadataEvent] = []
        update_all(keys, lambda key: MetadataFix(), progress=events.append, jobs=3)
        assert [e.key for e in events] == keys
        assert [e.done for e in events] == list(range(1, 101))

    def test_missing_extra_stops_the_run(self) -> None:
        """An error that every object would meet is raised, not counted per object."""

        def fix(key: str) -> MetadataFix:
            raise MissingBackendError("s3", "s3fs", "s3")

        with pytest.raises(MissingBackendError):
            update_all(["a", "b"], fix)

    @pytest.mark.s3
    def test_key_stored_by_another_tool_is_skipped(
        self, storage_factory: Callable[..., Storage]
    ) -> None:
        """A listed name this package refuses as a key is skipped; the others are done."""
        storage = storage_factory("s3-server", QUERY)
        write_elsewhere(storage, "a.png", DATA, WRONG)
        write_elsewhere(storage, "odd\\name.png", DATA, WRONG)
        result = storage.update_metadata()
        assert list(result.updated) == ["a.png"]
        assert list(result.skipped) == ["odd\\name.png"]


class TestWithoutMetadata:
    @pytest.mark.parametrize("kind", ["file", "memory"])
    def test_local_storages(self, storage_factory: Callable[..., Storage], kind: str) -> None:
        """Local storages keep no metadata: nothing is checked."""
        storage = storage_factory(kind)
        storage.write_bytes("a.png", DATA)
        result = storage.update_metadata()
        assert (result.supported, result.checked) == (False, 0)


class TestCommand:
    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        code = main(["update-metadata", *args])
        captured = capsys.readouterr()
        for text in (captured.out, captured.err):
            assert SECRET not in text
            assert QUOTED_SECRET not in text
        return code, captured.out, captured.err

    def test_dry_run_then_run(
        self, storage_factory: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--dry-run lists what would change; the run changes it; a re-run finds it right."""
        storage = storage_factory("s3-server", QUERY)
        write_elsewhere(storage, "a.png", DATA, WRONG)
        write_elsewhere(storage, "b.png", DATA, WRONG)
        dsn = storage.config.to_dsn()
        code, out, _ = self.run(capsys, dsn, "a", "--dry-run")
        assert code == 0
        assert "would update a.png (content-type, cache-control)" in out
        assert "checked 1: would update 1, 0 already right, skipped 0, failed 0" in out
        assert stored(storage, "a.png")["content_type"] == WRONG
        code, out, _ = self.run(capsys, dsn)
        assert code == 0
        assert "updated b.png (content-type, cache-control)" in out
        assert "checked 2: updated 2" in out
        code, out, _ = self.run(capsys, dsn)
        assert (code, out.strip()) == (
            0,
            "checked 2: updated 0, 2 already right, skipped 0, failed 0",
        )

    def test_failures_exit_1(
        self, storage_factory: Callable[..., Storage], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An object the server will not rewrite (SeaweedFS has no key for sse=aws:kms)
        is listed as failed, the others are still done, and the exit code is 1."""
        storage = storage_factory("s3-seaweedfs", "sse=aws%3Akms&sse_kms_key_id=k")
        write_elsewhere(storage, "a.png", DATA, WRONG)
        code, out, err = self.run(capsys, storage.config.to_dsn())
        assert code == 1
        assert "failed: a.png:" in err
        assert "failed 1" in out

    def test_local_storage(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file: storage keeps no metadata: said, exit 0."""
        code, out, _ = self.run(capsys, f"file://{tmp_path}/")
        assert code == 0
        assert "nothing to update" in out

    def test_bad_dsn_exit_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = self.run(capsys, "s3://bucket.s3.amazonaws.com/?auth=nope")
        assert code == 2
        assert "auth" in err

    def test_bar_on_a_terminal(
        self, storage_factory: Callable[..., Storage], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a terminal the objects count on a bar; failures are written above it."""
        storage = storage_factory("s3-server", QUERY)
        write_elsewhere(storage, "a.png", DATA, WRONG)
        out, err = _Terminal(), _Terminal()
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        assert main(["update-metadata", storage.config.to_dsn()]) == 0
        assert "update-metadata" in err.getvalue()
        assert "1/1" in err.getvalue()
        assert "checked 1: updated 1" in out.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True
