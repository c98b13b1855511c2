"""DSNStorage against Django's own storage test suite, on a file DSN and on S3.

The classes below follow Django's ``tests/file_storage/tests.py`` (``FileStorageTests``,
``CustomStorageTests``, ``OverwritingStorageTests``, ``DiscardingFalseContentStorageTests``,
``FileFieldStorageTests``, ``FileSaveRaceConditionTest``, ``FileStoragePermissions``,
``FileStoragePathParsing``, ``ContentFileStorageTestCase``, ``FileLikeObjectTestCase``),
test for test, written again for pytest and run on a local ``file:`` storage, a
``memory:`` one, moto's S3 server and SeaweedFS. Where a check is about local files only
(``path()``, access times, permissions) it runs on ``file:`` and, on S3, checks the
documented refusal instead.

Left out, and why:

* ``GetStorageClassTests``: ``get_storage_class`` is gone from Django 5.1; storages come
  from ``STORAGES`` (tested below with ``storages``/``default_storage``).
* ``test_empty_location``, ``test_setting_changed``, ``test_lazy_base_url_init``,
  ``test_base_url``: ``location``/``base_url``/``MEDIA_ROOT``/``MEDIA_URL`` options; a
  DSN storage's root and public URL come from its DSN (``url=``, ``domain=``), tested as
  ``url(None)`` and a storage without a public URL.
* ``test_makedirs_race_handling``, ``test_remove_race_handling``: they patch
  ``os.makedirs``/``os.remove`` inside ``FileSystemStorage``; our writes publish by
  hard link or rename and our deletes are the backend's. What they protect (a racing
  delete is not an error) is ``TestFileStorage.test_delete_missing_is_noop``.
* ``test_file_url``'s exact escapes: Django keeps ``~!*()'`` and passes a NUL through as
  ``%00``; our URLs are S3 canonical URIs (only RFC 3986 unreserved characters and ``/``
  stay, so a presigned URL's signature matches) and a NUL is a suspicious name. The
  normalisation it tests (backslashes, leading slashes, ``url(None)``) is kept.
* ``FileStoragePermissions`` with explicit ``FILE_UPLOAD_PERMISSIONS`` and
  ``FILE_UPLOAD_DIRECTORY_PERMISSIONS``: a DSN storage does not read those settings;
  the default-permission tests (the umask decides) are kept, on ``file:``.
* ``FileLikeObjectTestCase`` reads from ``urlopen`` on a live server; what it proves, a
  file object that cannot seek, is ``test_unseekable_file_object`` here.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

import pytest

from tests.djangoapp import MEDIA_ENV, STATIC_ENV, configure

configure()

from django.core.exceptions import (  # noqa: E402
    ImproperlyConfigured,
    SuspiciousFileOperation,
    SuspiciousOperation,
)
from django.core.files.base import ContentFile, File  # noqa: E402
from django.core.files.uploadedfile import (  # noqa: E402
    InMemoryUploadedFile,
    SimpleUploadedFile,
    TemporaryUploadedFile,
)
from django.db.models.fields.files import FileDescriptor  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from storage_dsn import ConfigurationError  # noqa: E402
from storage_dsn.django import DSNStorage, ManifestDSNStorage  # noqa: E402
from tests.conftest import KEY_ID, KINDS, QUOTED_SECRET, SECRET  # noqa: E402
from tests.djangoapp import models  # noqa: E402
from tests.djangoapp.models import Thing, temp_storage  # noqa: E402

FILE_SUFFIX = "[A-Za-z0-9]{7}"
DJANGO_KINDS = ["file", "memory", "s3-server", "s3-seaweedfs"]


def _reset(*opened: DSNStorage) -> None:
    """Forget the storages' opened DSN, so they read the environment again."""
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.core.files.storage import default_storage, storages
    from django.utils.functional import empty

    for each in opened:
        each._storage = None
    storages._storages.clear()
    default_storage._wrapped = empty
    staticfiles_storage._wrapped = empty


#: ``python -m benchmarks.django_suite`` sets this to run the same tests on
#: django-storages' S3 backend, for comparison; the test suite never sets it.
COMPARE = os.environ.get("STORAGE_DSN_DJANGO_COMPARE") == "django-storages"


@pytest.fixture(params=DJANGO_KINDS)
def dsn(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh storage of each kind, in ``MEDIA_ENV`` (which the models' storages read)."""
    value = KINDS[request.param](request, tmp_path)
    monkeypatch.setenv(MEDIA_ENV, value)
    _reset(models.temp_storage, models.custom_storage)
    if COMPARE and value.startswith("s3"):
        other = _django_storages(value)
        for field in Thing._meta.get_fields():
            if getattr(field, "storage", None) is models.temp_storage:
                monkeypatch.setattr(field, "storage", other)
        monkeypatch.setitem(globals(), "temp_storage", other)
    return value


@pytest.fixture
def storage(dsn: str) -> Iterator[DSNStorage]:
    yield _django_storages(dsn) if COMPARE and dsn.startswith("s3") else DSNStorage(env=MEDIA_ENV)
    _reset(models.temp_storage, models.custom_storage)


def _django_storages(dsn: str) -> Any:
    """django-storages' S3Storage on the bucket and prefix of an ``s3+http`` DSN, as its
    documentation sets it up, with ``file_overwrite=False`` (Django's semantics)."""
    from urllib.parse import urlsplit

    from storages.backends.s3 import S3Storage

    where = urlsplit(dsn)
    bucket, _, location = where.path.strip("/").partition("/")
    return S3Storage(
        bucket_name=bucket,
        location=location,
        endpoint_url=f"http://{where.hostname}:{where.port}",
        access_key=KEY_ID,
        secret_key=SECRET,
        region_name="us-east-1",
        querystring_auth=False,
        file_overwrite=False,
    )


def _local(storage: DSNStorage) -> bool:
    opened = getattr(storage, "storage", None)
    return opened is not None and opened.local_path("x") is not None


class TestFileStorage:
    """Django's FileStorageTests."""

    def test_file_access_options(self, storage: DSNStorage) -> None:
        """Standard file access options are available, and work as expected."""
        assert not storage.exists("storage_test")
        f = storage.open("storage_test", "w")
        f.write("storage contents")
        f.close()
        assert storage.exists("storage_test")
        f = storage.open("storage_test", "r")
        assert f.read() == "storage contents"
        f.close()
        storage.delete("storage_test")
        assert not storage.exists("storage_test")

    @pytest.mark.parametrize("getter", ["get_modified_time", "get_created_time"])
    def test_file_time(self, storage: DSNStorage, getter: str) -> None:
        """The storage gives a datetime for the file's time, aware in UTC with USE_TZ."""
        before = timezone.now().replace(microsecond=0) - timedelta(seconds=1)
        name = storage.save("test.file", ContentFile("custom contents"))
        after = timezone.now() + timedelta(seconds=1)
        stamp = getattr(storage, getter)(name)
        assert timezone.is_aware(stamp)
        assert stamp.utcoffset() == timedelta(0)
        assert before <= stamp <= after
        if _local(storage):
            os_time = os.path.getctime if getter == "get_created_time" else os.path.getmtime
            expected = datetime.fromtimestamp(os_time(storage.path(name)), tz=dt_timezone.utc)
            assert stamp == expected

    @pytest.mark.parametrize("getter", ["get_modified_time", "get_created_time"])
    def test_file_time_naive_without_use_tz(self, storage: DSNStorage, getter: str) -> None:
        """Without USE_TZ the time is naive, in the system's time zone."""
        name = storage.save("test.file.tz.off", ContentFile("custom contents"))
        with override_settings(USE_TZ=False):
            stamp = getattr(storage, getter)(name)
        assert timezone.is_naive(stamp)
        aware = getattr(storage, getter)(name)
        assert stamp == datetime.fromtimestamp(aware.timestamp())

    def test_file_get_accessed_time(self, storage: DSNStorage) -> None:
        """Access times exist for local files only; elsewhere NotImplementedError."""
        name = storage.save("test.file", ContentFile("custom contents"))
        if not _local(storage):
            with pytest.raises(NotImplementedError):
                storage.get_accessed_time(name)
            return
        atime = storage.get_accessed_time(name)
        expected = os.path.getatime(storage.path(name))
        assert atime == datetime.fromtimestamp(expected, tz=dt_timezone.utc)

    def test_file_save_without_name(self, storage: DSNStorage) -> None:
        """The name comes from the content object if no name is given."""
        f = ContentFile("custom contents")
        f.name = "test.file"
        assert storage.save(None, f) == "test.file"
        assert storage.exists("test.file")

    def test_file_save_with_path(self, storage: DSNStorage) -> None:
        """Saving a name with directories works; the directory then exists."""
        assert not storage.exists("path/to")
        storage.save("path/to/test.file", ContentFile("file saved with path"))
        assert storage.exists("path/to")
        assert storage.exists("path/to/")
        assert storage.exists("")
        with storage.open("path/to/test.file") as f:
            assert f.read() == b"file saved with path"

    def test_save_doesnt_close(self, storage: DSNStorage) -> None:
        """Saving leaves the uploaded file open."""
        with TemporaryUploadedFile("test", "text/plain", 1, "utf8") as file:
            file.write(b"1")
            file.seek(0)
            storage.save("path/to/test.file", file)
            assert not file.closed
            assert not file.file.closed
        file = InMemoryUploadedFile(io.StringIO("1"), "", "test", "text/plain", 1, "utf8")
        with file:
            storage.save("path/to/test.file", file)
            assert not file.closed
            assert not file.file.closed

    def test_file_path(self, storage: DSNStorage, tmp_path: Path) -> None:
        """path() is the file's local path on file storages, NotImplementedError elsewhere."""
        name = storage.save("test.file", ContentFile("custom contents"))
        if _local(storage):
            assert storage.path(name) == str(tmp_path / "media" / name)
        else:
            with pytest.raises(NotImplementedError):
                storage.path(name)

    def test_file_url(self, storage: DSNStorage) -> None:
        """URLs: the base plus the quoted name; leading slashes and backslashes
        normalised; url(None) is the base."""
        base = storage.url(None)
        assert base.endswith("/media/")
        assert storage.url("test.file") == base + "test.file"
        assert storage.url("a b/ü.txt") == base + "a%20b/%C3%BC.txt"
        assert storage.url("a/b\\c.file") == base + "a/b/c.file"
        for evil in ("/evil.com", "\\evil.com", "///evil.com", "\\\\\\evil.com"):
            assert storage.url(evil) == base + "evil.com"
        assert storage.url("") == base

    def test_url_refuses_traversal(self, storage: DSNStorage) -> None:
        """A name that leaves the root, or holds a NUL, has no URL."""
        for name in ("../x", "a/../../x", "ab\0c"):
            with pytest.raises(SuspiciousOperation):
                storage.url(name)

    def test_listdir(self, storage: DSNStorage) -> None:
        """listdir gives the directories and the files directly under a path."""
        storage.save("storage_test_1", ContentFile("custom content"))
        storage.save("storage_test_2", ContentFile("custom content"))
        storage.save("storage_dir_1/inner", ContentFile("custom content"))
        dirs, files = storage.listdir("")
        assert set(dirs) == {"storage_dir_1"}
        assert set(files) == {"storage_test_1", "storage_test_2"}
        assert storage.listdir("storage_dir_1") == ([], ["inner"])
        assert storage.listdir("storage_dir_1/") == ([], ["inner"])
        assert storage.listdir("missing") == ([], [])

    def test_file_storage_prevents_directory_traversal(self, storage: DSNStorage) -> None:
        """Names outside the root are suspicious."""
        for name in ("..", "/etc/passwd", "a/../../b", "a\\b", "a\0b"):
            with pytest.raises(SuspiciousOperation):
                storage.exists(name)
        with pytest.raises(SuspiciousOperation):
            storage.save("../escape.txt", ContentFile("x"))
        with pytest.raises(SuspiciousOperation):
            storage.open("../escape.txt")

    def test_file_storage_preserves_filename_case(self, storage: DSNStorage) -> None:
        """The storage preserves the case of file names."""
        mixed_case = "CaSe_SeNsItIvE"
        with storage.open(mixed_case, "w") as f:
            f.write("storage contents")
        assert storage.listdir("")[1] == [mixed_case]
        assert not storage.exists(mixed_case.lower())

    def test_file_chunks_error(self, storage: DSNStorage) -> None:
        """An error from chunks() fails the save and leaves no file behind."""
        f1 = ContentFile("chunks fails")

        def failing_chunks(chunk_size: int | None = None) -> Any:
            raise OSError("no chunks")

        f1.chunks = failing_chunks  # type: ignore[method-assign]
        with pytest.raises(OSError, match="no chunks"):
            storage.save("error.file", f1)
        assert not storage.exists("error.file")

    def test_delete_no_name(self, storage: DSNStorage) -> None:
        """delete('') never touches the root: it fails loudly."""
        with pytest.raises(ValueError, match="name must be given"):
            storage.delete("")

    def test_delete_missing_is_noop(self, storage: DSNStorage) -> None:
        """Deleting what is not there is not an error (it may have gone concurrently)."""
        storage.delete("never-was.txt")
        name = storage.save("gone.txt", ContentFile("x"))
        storage.delete(name)
        storage.delete(name)
        assert not storage.exists(name)

    def test_delete_deletes_directories(self, storage: DSNStorage, tmp_path: Path) -> None:
        """An empty directory of a file storage is deleted, as FileSystemStorage does."""
        if not _local(storage):
            pytest.skip("object stores have no empty directories")
        (tmp_path / "media" / "empty-dir").mkdir(parents=True)
        storage.delete("empty-dir")
        assert not (tmp_path / "media" / "empty-dir").exists()

    def test_delete_stays_inside(self, storage: DSNStorage, tmp_path: Path) -> None:
        """A directory reached through a symlink out of the root is never removed."""
        if not _local(storage):
            pytest.skip("object stores have no directories or symlinks")
        outside = tmp_path / "outside"
        (outside / "empty").mkdir(parents=True)
        (tmp_path / "media").mkdir(exist_ok=True)
        (tmp_path / "media" / "link").symlink_to(outside)
        storage.delete("link/empty")
        storage.delete("link")
        assert (outside / "empty").is_dir()
        assert storage.listdir("link") == ([], [])

    def test_size(self, storage: DSNStorage) -> None:
        """size() is the stored size; a missing name is FileNotFoundError."""
        storage.save("sized.bin", ContentFile(b"x" * 1234))
        assert storage.size("sized.bin") == 1234
        with pytest.raises(FileNotFoundError):
            storage.size("missing.bin")

    def test_pathlib_names(self, storage: DSNStorage) -> None:
        """Names may be pathlib paths, as Django accepts them."""
        name = storage.save(Path("dir") / "p.txt", ContentFile("pathlib"))  # type: ignore[arg-type]
        assert name == "dir/p.txt"
        assert storage.exists(Path(name))  # type: ignore[arg-type]
        with storage.open(Path(name)) as f:  # type: ignore[arg-type]
            assert f.read() == b"pathlib"


class TrackNumberingStorage(DSNStorage):
    """Appends numbers to duplicate names rather than random suffixes, like Trac."""

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        basename, *ext = name.split(".")
        number = 2
        while self.exists(name):
            name = ".".join([basename, str(number), *ext])
            number += 1
        return name


class TestCustomStorage:
    """Django's CustomStorageTests: a subclass's get_available_name is used."""

    def test_custom_get_available_name(self, dsn: str) -> None:
        storage = TrackNumberingStorage(env=MEDIA_ENV)
        first = storage.save("custom_storage", ContentFile("custom contents"))
        assert first == "custom_storage"
        second = storage.save("custom_storage", ContentFile("more contents"))
        assert second == "custom_storage.2"


class TestOverwritingStorage:
    """Django's OverwritingStorageTests, with Django 5.1's allow_overwrite=True."""

    def test_save_overwrite_behavior(self, dsn: str) -> None:
        """Saving to the same name twice overwrites the first file."""
        storage = DSNStorage(env=MEDIA_ENV, allow_overwrite=True)
        name = "test.file"
        assert storage.save(name, ContentFile(b"content one")) == name
        with storage.open(name) as fp:
            assert fp.read() == b"content one"
        assert storage.save(name, ContentFile(b"second content")) == name
        with storage.open(name) as fp:
            assert fp.read() == b"second content"
        assert storage.listdir("")[1] == [name]

    def test_overwrite_still_truncates(self, dsn: str) -> None:
        """With allow_overwrite, max_length still shortens the name."""
        storage = DSNStorage(env=MEDIA_ENV, allow_overwrite=True)
        assert storage.save("a_long_name.txt", ContentFile(b"x"), max_length=10) == "a_long.txt"


class TestDiscardingFalseContent:
    """Django's DiscardingFalseContentStorageTests: a wrapped file object is truthy."""

    def test_custom_storage_discarding_empty_content(self, dsn: str) -> None:
        class Discarding(DSNStorage):
            def _save(self, name: str, content: Any) -> str:
                return super()._save(name, content) if content else ""

        storage = Discarding(env=MEDIA_ENV)
        storage.save("tests/stringio", io.StringIO("content"))
        assert storage.exists("tests/stringio")
        with storage.open("tests/stringio") as f:
            assert f.read() == b"content"


@pytest.mark.usefixtures("dsn")
class TestFileField:
    """Django's FileFieldStorageTests: model FileFields on a DSN storage."""

    def test_files(self) -> None:
        assert isinstance(Thing.normal, FileDescriptor)
        obj1 = Thing()
        assert obj1.normal.name == ""
        with pytest.raises(ValueError):  # noqa: PT011 (Django's message varies)
            _ = obj1.normal.size
        obj1.normal.save("django_test.txt", ContentFile("content"))
        assert obj1.normal.name == "tests/django_test.txt"
        assert obj1.normal.size == 7
        assert obj1.normal.read() == b"content"
        obj1.normal.close()
        # Assigned files are committed only when the model is saved.
        obj1.normal = SimpleUploadedFile("assignment.txt", b"content")
        dirs, files = temp_storage.listdir("tests")
        assert dirs == []
        assert "assignment.txt" not in files
        obj1.save()
        dirs, files = temp_storage.listdir("tests")
        assert sorted(files) == ["assignment.txt", "django_test.txt"]
        # Another file of the same name gets a suffix.
        obj2 = Thing()
        obj2.normal.save("django_test.txt", ContentFile("more content"))
        obj2_name = obj2.normal.name
        assert re.fullmatch(f"tests/django_test_{FILE_SUFFIX}.txt", obj2_name)
        assert obj2.normal.size == 12
        obj2.normal.close()
        # Deleting an object does not delete the file it uses.
        obj2.delete()
        obj2.normal.save("django_test.txt", ContentFile("more content"))
        assert obj2_name != obj2.normal.name
        assert re.fullmatch(f"tests/django_test_{FILE_SUFFIX}.txt", obj2.normal.name)
        obj2.normal.close()

    def test_filefield_read(self) -> None:
        """Files can be read a little at a time, and in chunks."""
        obj = Thing.objects.create(normal=SimpleUploadedFile("assignment.txt", b"content"))
        obj.normal.open()
        assert obj.normal.read(3) == b"con"
        assert obj.normal.read() == b"tent"
        assert list(obj.normal.chunks(chunk_size=2)) == [b"co", b"nt", b"en", b"t"]
        obj.normal.close()

    def test_filefield_write(self) -> None:
        """Files can be written to; the write is visible once closed."""
        obj = Thing.objects.create(normal=SimpleUploadedFile("rewritten.txt", b"content"))
        with obj.normal as normal:
            normal.open("wb")
            normal.write(b"updated")
        obj.refresh_from_db()
        assert obj.normal.read() == b"updated"
        obj.normal.close()

    def test_filefield_reopen(self) -> None:
        """A closed FieldFile can be opened again."""
        obj = Thing.objects.create(normal=SimpleUploadedFile("reopen.txt", b"content"))
        with obj.normal as normal:
            normal.open()
        obj.normal.open()
        obj.normal.file.seek(0)
        assert obj.normal.read() == b"content"
        obj.normal.close()

    def test_duplicate_filename(self) -> None:
        """Files with the same name get _(7 random chars) appended."""
        objs = [Thing() for _ in range(2)]
        for o in objs:
            o.normal.save("multiple_files.txt", ContentFile("Same Content"))
        names = [o.normal.name for o in objs]
        assert names[0] == "tests/multiple_files.txt"
        assert re.fullmatch(f"tests/multiple_files_{FILE_SUFFIX}.txt", names[1])

    def test_file_truncation(self) -> None:
        """With a small max_length the alternative name is truncated to fit; when it
        cannot be, SuspiciousFileOperation."""
        objs = [Thing() for _ in range(2)]
        filename = "filename.ext"
        for o in objs:
            o.limited_length.save(filename, ContentFile("Same Content"))
        names = [o.limited_length.name for o in objs]
        assert names[0] == f"tests/{filename}"
        assert re.fullmatch(f"tests/fi_{FILE_SUFFIX}.ext", names[1])
        filename = "short.longext"
        objs[0].limited_length.save(filename, ContentFile("Same Content"))
        with pytest.raises(SuspiciousFileOperation, match="can not find an available filename"):
            objs[1].limited_length.save(filename, ContentFile("Same Content"))

    def test_extended_length_storage(self) -> None:
        """A FileField with max_length over 255 holds a file name of the longest size a
        local file system allows."""
        filename = (255 - 4) * "a"  # 4 characters for the extension
        obj = Thing()
        obj.extended_length.save(f"{filename}.txt", ContentFile("Same Content"))
        assert obj.extended_length.name == f"tests/{filename}.txt"
        assert obj.extended_length.read() == b"Same Content"
        obj.extended_length.close()

    def test_filefield_default(self) -> None:
        """A default value names a shared file, which deleting an object keeps."""
        temp_storage.save("tests/default.txt", ContentFile("default content"))
        obj = Thing.objects.create()
        assert obj.default.name == "tests/default.txt"
        assert obj.default.read() == b"default content"
        obj.default.close()
        obj.delete()
        obj = Thing()
        assert obj.default.read() == b"default content"
        obj.default.close()

    def test_empty_upload_to(self) -> None:
        """An empty upload_to means no subdirectory."""
        obj = Thing()
        obj.empty.save("django_test.txt", ContentFile("more content"))
        assert obj.empty.name == "django_test.txt"
        assert obj.empty.read() == b"more content"
        obj.empty.close()

    def test_random_upload_to(self) -> None:
        """A callable upload_to's directory is determined once."""
        obj = Thing()
        obj.random.save("random_file", ContentFile("random content"))
        assert obj.random.name.endswith("/random_file")
        obj.random.close()

    def test_custom_valid_name_callable_upload_to(self) -> None:
        """get_valid_name() is called when upload_to is a callable."""
        obj = Thing()
        obj.custom_valid_name.save("random_file", ContentFile("random content"))
        assert obj.custom_valid_name.name.endswith("/random_file_valid")
        obj.custom_valid_name.close()

    def test_filefield_pickling(self) -> None:
        """A model with a saved file pickles (as the cache does it)."""
        obj = Thing()
        obj.normal.save("django_test.txt", ContentFile("more content"))
        obj.normal.close()
        assert pickle.loads(pickle.dumps(obj)).normal.name == "tests/django_test.txt"  # noqa: S301

    def test_file_object(self, tmp_path: Path) -> None:
        """A Python file object (text mode) is saved as its bytes."""
        source = tmp_path / "example.txt"
        source.write_text("some content")
        with source.open() as file_obj:
            temp_storage.save("tests/file_obj", file_obj)
        assert temp_storage.exists("tests/file_obj")
        with temp_storage.open("tests/file_obj") as f:
            assert f.read() == b"some content"

    def test_stringio(self) -> None:
        """A StringIO is saved as its UTF-8 text."""
        output = io.StringIO()
        output.write("content")
        output.seek(0)
        temp_storage.save("tests/stringio", output)
        assert temp_storage.exists("tests/stringio")
        with temp_storage.open("tests/stringio") as f:
            assert f.read() == b"content"


class _Meeting(ContentFile):
    """A file whose chunks wait until both savers have chosen their name: the race of
    Django's FileSaveRaceConditionTest, made certain instead of likely."""

    def __init__(self, content: bytes, barrier: threading.Barrier) -> None:
        super().__init__(content)
        self.barrier: threading.Barrier | None = barrier

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        if self.barrier is not None:  # the first write only; a retry goes straight on
            self.barrier.wait(timeout=30)
            self.barrier = None
        return super().chunks(chunk_size)


class TestFileSaveRaceCondition:
    """Django's FileSaveRaceConditionTest: two concurrent saves of one name both land."""

    def test_race_condition(self, storage: DSNStorage) -> None:
        barrier = threading.Barrier(2)
        names: list[str] = []
        errors: list[BaseException] = []

        def save() -> None:
            try:
                names.append(storage.save("conflict", _Meeting(b"Data", barrier)))
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=save) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        first, second = sorted(names)
        assert first == "conflict"
        assert re.fullmatch(f"conflict_{FILE_SUFFIX}", second)
        assert sorted(storage.listdir("")[1]) == [first, second]
        for name in names:
            with storage.open(name) as f:
                assert f.read() == b"Data"


class TestFileStoragePermissions:
    """Django's FileStoragePermissions, default modes: the umask decides (file: only)."""

    @pytest.fixture
    def umask(self) -> Iterator[int]:
        old = os.umask(0o027)
        yield 0o027
        os.umask(old)

    def test_file_upload_default_permissions(self, umask: int, tmp_path: Path) -> None:
        storage = DSNStorage(dsn=f"file://{tmp_path}/media/")
        name = storage.save("some_file", ContentFile("data"))
        assert os.stat(storage.path(name)).st_mode & 0o777 == 0o666 & ~umask

    def test_file_upload_directory_default_permissions(self, umask: int, tmp_path: Path) -> None:
        storage = DSNStorage(dsn=f"file://{tmp_path}/media/")
        name = storage.save("the_directory/subdir/the_file", ContentFile("data"))
        file_path = Path(storage.path(name))
        assert file_path.parent.stat().st_mode & 0o777 == 0o777 & ~umask
        assert file_path.parent.parent.stat().st_mode & 0o777 == 0o777 & ~umask


class TestFileStoragePathParsing:
    """Django's FileStoragePathParsing."""

    def test_directory_with_dot(self, storage: DSNStorage) -> None:
        """A dot in the directory name does not make the suffix go there."""
        storage.save("dotted.path/test", ContentFile("1"))
        storage.save("dotted.path/test", ContentFile("2"))
        files = sorted(storage.listdir("dotted.path")[1])
        assert not storage.exists("dotted_.path")
        assert files[0] == "test"
        assert re.fullmatch(f"test_{FILE_SUFFIX}", files[1])

    def test_first_character_dot(self, storage: DSNStorage) -> None:
        """A name starting with a dot has no extension: the suffix goes at the end."""
        storage.save("dotted.path/.test", ContentFile("1"))
        storage.save("dotted.path/.test", ContentFile("2"))
        files = sorted(storage.listdir("dotted.path")[1])
        assert not storage.exists("dotted_.path")
        assert files[0] == ".test"
        assert re.fullmatch(rf"\.test_{FILE_SUFFIX}", files[1])


class TestContentFile:
    """Django's ContentFileStorageTestCase, and its FileLikeObjectTestCase."""

    def test_content_saving(self, storage: DSNStorage) -> None:
        """ContentFile of bytes or of text is saved."""
        storage.save("bytes.txt", ContentFile(b"content"))
        storage.save("unicode.txt", ContentFile("español"))
        with storage.open("unicode.txt") as f:
            assert f.read() == "español".encode()

    def test_unseekable_file_object(self, storage: DSNStorage) -> None:
        """A file object that cannot seek (an HTTP response) is saved whole, even when
        its name is taken and a second name is needed."""

        class Unseekable(io.RawIOBase):
            def __init__(self, data: bytes) -> None:
                self._data = io.BytesIO(data)

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                return self._data.readinto(buffer)

        body = b"<html>remote</html>" * 1000
        first = storage.save("remote_file.html", File(Unseekable(body)))
        second = storage.save("remote_file.html", File(Unseekable(body)))
        assert first != second
        for name in (first, second):
            with storage.open(name) as stored:
                assert stored.read() == body


def _write_then_fail(storage: DSNStorage, name: str) -> None:
    with storage.open(name, "wb") as f:
        f.write(b"x")
        raise RuntimeError("crash")


class TestDjangoSemantics:
    """What the DSN storage adds to, or decides within, Django's contract."""

    def test_suspicious_names_are_file_operations(self, storage: DSNStorage) -> None:
        """Every refused name is Django's SuspiciousFileOperation, whichever call."""
        calls = [
            lambda n: storage.exists(n),
            lambda n: storage.open(n),
            lambda n: storage.delete(n),
            lambda n: storage.size(n),
        ]
        for call in calls:
            for name in ("../x", "/etc/passwd", "a\\b", "a\0b"):
                with pytest.raises(SuspiciousFileOperation):
                    call(name)
        # save() and url() turn backslashes into slashes, url() strips leading slashes.
        for name in ("../x", "/etc/passwd", "a\0b"):
            with pytest.raises(SuspiciousFileOperation):
                storage.save(name, ContentFile(b"x"))
        for name in ("../x", "a\0b"):
            with pytest.raises(SuspiciousFileOperation):
                storage.url(name)

    def test_open_modes(self, storage: DSNStorage) -> None:
        """open() takes Django's modes, r/rb/w/wb, and nothing else."""
        with storage.open("m.txt", "wb") as f:
            f.write(b"bytes")
        with storage.open("m.txt", "r") as f:
            assert f.read() == "bytes"
        for mode in ("a", "r+", "xb"):
            with pytest.raises(ValueError, match="mode"):
                storage.open("m.txt", mode)

    def test_write_is_visible_on_close_only(self, storage: DSNStorage) -> None:
        """An open write is invisible until closed; an abandoned one leaves nothing."""
        f = storage.open("pending.txt", "wb")
        f.write(b"half")
        assert not storage.exists("pending.txt")
        f.close()
        assert storage.exists("pending.txt")
        with pytest.raises(RuntimeError):
            _write_then_fail(storage, "never.txt")
        assert not storage.exists("never.txt")

    def test_identical_saves_get_distinct_names(self, storage: DSNStorage) -> None:
        """The same bytes saved twice under one name are two files, never one shared."""
        a = storage.save("same.txt", ContentFile(b"same"))
        b = storage.save("same.txt", ContentFile(b"same"))
        assert a != b
        storage.delete(a)
        with storage.open(b) as f:
            assert f.read() == b"same"

    def test_temporary_uploaded_file(self, storage: DSNStorage) -> None:
        """A large upload Django spooled to disk is stored from its file."""
        with TemporaryUploadedFile("big.bin", "application/octet-stream", 0, None) as file:
            file.write(b"z" * 300_000)
            file.seek(0)
            name = storage.save("big.bin", file)
            again = storage.save("big.bin", file)
        assert storage.size(name) == storage.size(again) == 300_000

    def test_no_public_url(self, tmp_path: Path) -> None:
        """A storage without a public URL raises ValueError from url(), as Django's does."""
        storage = DSNStorage(dsn=f"file://{tmp_path}/private/")
        with pytest.raises(ValueError, match=r"public URL|base URL"):
            storage.url("a.txt")
        with pytest.raises(ValueError, match="base URL"):
            storage.url(None)


class TestConfiguration:
    """Settings, deconstruction and migrations."""

    def test_deconstructs_to_the_env_name(self) -> None:
        """A field's storage deconstructs to the variable's name."""
        path, args, kwargs = DSNStorage(env="AVATAR_DSN").deconstruct()
        assert path == "storage_dsn.django.DSNStorage"
        assert args == ()
        assert kwargs == {"env": "AVATAR_DSN"}
        assert DSNStorage().deconstruct()[2] == {}

    def test_migration_holds_no_dsn(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The migration writer writes the env name; the DSN's value never appears."""
        from django.db import models as django_models
        from django.db.migrations.writer import MigrationWriter

        dsn = f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.amazonaws.com/"
        monkeypatch.setenv("AVATAR_DSN", dsn)
        field = django_models.FileField(storage=DSNStorage(env="AVATAR_DSN"))
        text, imports = MigrationWriter.serialize(field)
        assert "storage_dsn.django.DSNStorage(env='AVATAR_DSN')" in text
        assert "import storage_dsn.django" in imports
        assert KEY_ID not in text
        assert "bucket" not in text

    def test_literal_dsn_with_secret_is_refused(self) -> None:
        """A secret in a literal DSN is refused when a migration would record it."""
        storage = DSNStorage(dsn=f"s3://{KEY_ID}:{QUOTED_SECRET}@bucket.s3.amazonaws.com/")
        with pytest.raises(ImproperlyConfigured, match="env=") as info:
            storage.deconstruct()
        assert SECRET not in str(info.value)
        assert QUOTED_SECRET not in str(info.value)
        assert SECRET not in repr(storage)

    def test_literal_dsn_without_secret_deconstructs(self) -> None:
        dsn = "file:./media/?url=%2Fmedia%2F"
        assert DSNStorage(dsn=dsn).deconstruct()[2] == {"dsn": dsn}

    def test_unset_env_fails_on_first_use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No variable: creating and deconstructing work, the first use says what is
        missing."""
        monkeypatch.delenv("NOT_SET_DSN", raising=False)
        storage = DSNStorage(env="NOT_SET_DSN")
        assert storage.deconstruct()[2] == {"env": "NOT_SET_DSN"}
        with pytest.raises(ConfigurationError, match="NOT_SET_DSN"):
            storage.exists("a.txt")

    def test_default_when_env_unset(self, tmp_path: Path) -> None:
        storage = DSNStorage(env="NOT_SET_DSN", default=f"file://{tmp_path}/d/?url=%2Fm%2F")
        assert storage.url("a.txt") == "/m/a.txt"

    def test_from_storages_setting(self, dsn: str) -> None:
        """STORAGES["default"] is a DSNStorage reading its env."""
        from django.core.files.storage import default_storage, storages

        assert isinstance(storages["default"], DSNStorage)
        name = default_storage.save("from-settings.txt", ContentFile(b"x"))
        assert temp_storage.exists(name)


@pytest.fixture(params=["file", "s3-server"])
def static_dsn(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh storage in ``STATIC_ENV``, which ``STORAGES["staticfiles"]`` reads."""
    value = KINDS[request.param](request, tmp_path)
    monkeypatch.setenv(STATIC_ENV, value)
    _reset()
    yield value
    _reset()


class TestManifestStorage:
    """ManifestDSNStorage: collectstatic with hashed names, on a file DSN and on S3."""

    def test_collectstatic(self, static_dsn: str) -> None:
        """collectstatic stores hashed copies and the manifest; {% static %} and a new
        storage (another process) give the hashed URL."""
        from django.contrib.staticfiles.storage import staticfiles_storage
        from django.core.management import call_command
        from django.templatetags.static import static

        call_command("collectstatic", interactive=False, verbosity=0)
        with staticfiles_storage.open("staticfiles.json") as f:
            paths = json.loads(f.read())["paths"]
        hashed_css = paths["css/site.css"]
        hashed_png = paths["img/dot.png"]
        assert re.fullmatch(r"css/site\.[0-9a-f]{12}\.css", hashed_css)
        with staticfiles_storage.open(hashed_css) as f:
            assert f"../img/{hashed_png.rpartition('/')[2]}".encode() in f.read()
        assert static("css/site.css") == DSNStorage(env=STATIC_ENV).url(hashed_css)
        assert ManifestDSNStorage(env=STATIC_ENV).url("css/site.css") == static("css/site.css")

    def test_collectstatic_clear(self, static_dsn: str) -> None:
        """--clear empties the storage first (exists("") is true on S3 too), then
        collects again."""
        from django.contrib.staticfiles.storage import staticfiles_storage
        from django.core.management import call_command

        staticfiles_storage.save("old/stale.txt", ContentFile(b"stale"))
        call_command("collectstatic", interactive=False, verbosity=0, clear=True)
        assert not staticfiles_storage.exists("old/stale.txt")
        assert staticfiles_storage.exists("staticfiles.json")
        assert staticfiles_storage.exists("css/site.css")

    def test_rerun_keeps_names(self, static_dsn: str) -> None:
        """A second collectstatic of unchanged files gives the same manifest."""
        from django.contrib.staticfiles.storage import staticfiles_storage
        from django.core.management import call_command

        call_command("collectstatic", interactive=False, verbosity=0)
        first = dict(staticfiles_storage.hashed_files)
        call_command("collectstatic", interactive=False, verbosity=0)
        assert staticfiles_storage.hashed_files == first
        assert staticfiles_storage.listdir("css")[1].count("site.css") == 1

    def test_lazy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Creating one reads nothing: the environment is needed on first use only."""
        monkeypatch.delenv("NOT_SET_DSN", raising=False)
        storage = ManifestDSNStorage(env="NOT_SET_DSN")
        with pytest.raises(ConfigurationError, match="NOT_SET_DSN"):
            storage.url("css/site.css")
