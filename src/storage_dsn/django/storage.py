"""Django storages over a DSN: :class:`DSNStorage` and :class:`ManifestDSNStorage`.

::

    # settings.py
    STORAGES = {
        "default": {"BACKEND": "storage_dsn.django.DSNStorage"},  # DEFAULT_STORAGE_DSN
        "staticfiles": {
            "BACKEND": "storage_dsn.django.DSNStorage",
            "OPTIONS": {"env": "STATIC_STORAGE_DSN"},
        },
    }

    # models.py
    avatar = models.FileField(storage=DSNStorage(env="AVATAR_STORAGE_DSN"))

The storage has Django's semantics, as :class:`~django.core.files.storage.FileSystemStorage`
has them: ``save()`` never replaces a file (unless ``allow_overwrite=True``) but finds the
next available name, and the write that claims a name is the storage's exclusive create
(a hard link locally, ``If-None-Match: *`` on S3), so two concurrent saves of one name
both land under distinct names. Names Django would call suspicious (``..``, absolute
paths, backslashes, control characters) raise
:class:`~django.core.exceptions.SuspiciousFileOperation` before any I/O.

Nothing is read from the environment until the storage is first used: ``makemigrations``
and ``collectstatic --help`` run without the variable set. A storage deconstructs to the
arguments it was given, the environment variable's *name* included, never its value; a
literal DSN that holds a secret is refused there, so no secret reaches a migration.
"""

from __future__ import annotations

import contextvars
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import IO, Any, TypeVar, cast

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import Storage as DjangoStorage
from django.utils.deconstruct import deconstructible

from ..backend import is_temp
from ..dsn import secret_values
from ..errors import InvalidKeyError, NoPublicURLError, StorageDSNError
from ..keys import validate_key
from ..registry import parse_dsn
from ..serving import mount_prefix
from ..storage import DEFAULT_ENV, Storage, open_storage
from ..uploads import LocalUploads
from ..urls import UploadForm

__all__ = ["DSNFile", "DSNStorage", "ManifestDSNStorage"]

#: Django's open modes; ``x`` is not among them (``save()`` is how Django creates).
_MODES = ("rb", "r", "wb", "w")
#: How many names ``save()`` tries when each it picks is taken by a concurrent writer.
_ATTEMPTS = 100
#: While ``get_available_name`` runs: a name is taken only by an object, not by a prefix
#: (a saved object next to a same-named prefix is fine on object stores), which spares a
#: listing per save.
_objects_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "storage_dsn_objects_only", default=False
)
#: ``save()``'s ``max_length``, for the new names ``_save`` picks after a lost race.
_max_length: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "storage_dsn_max_length", default=None
)


@contextmanager
def _names() -> Iterator[None]:
    """Raise an invalid name as Django does: :class:`SuspiciousFileOperation`."""
    try:
        yield
    except InvalidKeyError as exc:
        raise SuspiciousFileOperation(str(exc)) from None


def _key(name: object) -> str:
    """``name`` as a storage key; :class:`SuspiciousFileOperation` for an unsafe one."""
    with _names():
        return validate_key(str(name))


_T = TypeVar("_T", bound=type)


def _deconstructible(path: str) -> Callable[[_T], _T]:
    """Django's ``@deconstructible``, whose ``deconstruct()`` (what a migration records:
    the arguments given) refuses a literal DSN that holds a password, key or token, with
    :class:`~django.core.exceptions.ImproperlyConfigured` pointing to ``env=``."""

    def decorate(klass: _T) -> _T:
        klass = deconstructible(path=path)(klass)
        recorded = klass.deconstruct  # type: ignore[attr-defined]

        def deconstruct(self: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
            args, kwargs = self._constructor_args
            for dsn in (*args[:1], kwargs.get("dsn"), *args[2:3], kwargs.get("default")):
                if isinstance(dsn, str) and secret_values(parse_dsn(dsn)):
                    raise ImproperlyConfigured(
                        f"{klass.__name__} was given a DSN with a secret, which a migration "
                        "would record: put the DSN in an environment variable and pass its "
                        'name, env="MEDIA_STORAGE_DSN"'
                    )
            result: tuple[str, tuple[Any, ...], dict[str, Any]] = recorded(self)
            return result

        klass.deconstruct = deconstruct  # type: ignore[attr-defined]
        return klass

    return decorate


@_deconstructible("storage_dsn.django.DSNStorage")
class DSNStorage(DjangoStorage):
    """A Django storage over the DSN in the environment variable ``env``.

    ``dsn`` names the storage directly (a DSN without secrets, since a model field's
    storage is written into migrations: use ``env`` for any DSN with credentials);
    ``default`` is used when ``env`` is unset. With neither, the first use raises
    :class:`~storage_dsn.ConfigurationError`. ``allow_overwrite=True`` makes ``save()``
    replace an existing file of the same name, as Django 5.1's ``FileSystemStorage``
    option does.
    """

    def __init__(
        self,
        dsn: str | None = None,
        env: str = DEFAULT_ENV,
        default: str | None = None,
        *,
        allow_overwrite: bool = False,
    ) -> None:
        self._dsn = dsn
        self._env = env
        self._default = default
        self._allow_overwrite = allow_overwrite
        self._storage: Storage | None = None
        self._uploads: LocalUploads | None = None

    def __repr__(self) -> str:
        where = "a DSN" if self._dsn is not None else f"${self._env}"
        return f"<{type(self).__name__} {where}>"

    # -- the storage behind it --------------------------------------------------------

    @property
    def storage(self) -> Storage:
        """The :class:`~storage_dsn.Storage`, opened on first use."""
        storage = self._storage
        if storage is None:
            storage = open_storage(self._dsn, env=self._env, default=self._default)
            self._storage = storage
        return storage

    @property
    def base_url(self) -> str | None:
        """The URL the storage's root maps to, or ``None`` (presigned or no public URL)."""
        config = self.storage.config
        if config.public_url:
            return config.public_url
        if config.signed_urls:
            return None
        try:
            return self.storage.url("x")[:-1]
        except ValueError:
            return None

    # -- direct uploads -----------------------------------------------------------------

    def upload_url(
        self,
        name: str,
        *,
        expires: int | None = None,
        content_type: str | None = None,
        max_size: int | None = None,
    ) -> str:
        """A URL a browser may ``PUT`` ``name`` to (the request body is the file).

        Remote storages presign their own (S3, Azure, GCS); a local one gives a URL on
        :func:`~storage_dsn.django.media_urlpatterns` signed with ``SECRET_KEY``. With
        ``content_type`` the upload must declare that type. ``max_size`` (bytes) holds on
        local storages only: a presigned ``PUT`` cannot bound its size, so elsewhere it
        is a :class:`~storage_dsn.StorageDSNError` (use :meth:`upload_form`).
        """
        key = _key(name)
        uploads = self.local_uploads()
        with _names():
            if uploads is not None:
                return uploads.upload_url(
                    key, expires=expires, content_type=content_type, max_size=max_size
                )
            if max_size is not None:
                raise StorageDSNError(
                    "a presigned PUT cannot limit its size; use upload_form(..., max_size=...)"
                )
            return self.storage.upload_url(key, expires=expires, content_type=content_type)

    def upload_form(
        self,
        name: str,
        *,
        expires: int | None = None,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> UploadForm:
        """An :class:`~storage_dsn.UploadForm` for a browser's multipart ``POST``.

        ``name`` ending in ``/`` takes any file name under it; ``content_type`` ending in
        ``/`` or ``/*`` is a prefix; ``max_size`` bounds the file. Remote storages sign an
        S3 POST policy; a local one a form that posts to ``media_urlpatterns()``.
        """
        uploads = self.local_uploads()
        with _names():
            if uploads is not None:
                return uploads.upload_form(
                    name, expires=expires, max_size=max_size, content_type=content_type
                )
            return self.storage.upload_form(
                name, expires=expires, max_size=max_size, content_type=content_type
            )

    def local_uploads(self) -> LocalUploads | None:
        """What signs and receives direct uploads for a local storage (``file``,
        ``memory``), at its public URL's path; ``None`` for remote storages."""
        if self._uploads is None:
            storage = self.storage
            if not storage.backend.local:
                return None
            public = storage.config.public_url or ""
            if not public.startswith("/"):
                raise NoPublicURLError(
                    "a local storage takes direct uploads at its public URL, which must be "
                    "a path on this site (url=%2Fmedia%2F)"
                )
            self._uploads = LocalUploads(storage, mount_prefix(public), secret_keys)
        return self._uploads

    # -- Django's Storage API ---------------------------------------------------------

    def _open(self, name: str, mode: str = "rb") -> DSNFile:
        return DSNFile(self, name, mode)

    def _open_raw(self, name: str, mode: str) -> IO[Any]:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}, not {mode!r}")
        key = _key(name)
        with _names():
            return self.storage.open(key, mode)

    def save(self, name: str | None, content: Any, max_length: int | None = None) -> str:
        """Store ``content`` under ``name``, or under the next available name; return it."""
        token = _max_length.set(max_length)
        try:
            saved: str = super().save(name, content, max_length=max_length)
        finally:
            _max_length.reset(token)
        return saved

    def _save(self, name: str, content: Any) -> str:
        with _source(content) as source:
            for _ in range(_ATTEMPTS):
                key = _key(name)
                try:
                    with _names():
                        self.storage.save(
                            key,
                            source.reopen(),
                            overwrite=self._allow_overwrite,
                            adopt=False,
                        )
                except FileExistsError:
                    if self._allow_overwrite:
                        raise
                    # Taken since get_available_name looked: another writer won the race.
                    name = self.get_available_name(name, max_length=_max_length.get())
                else:
                    return name
        raise FileExistsError(f"no available name found for {name!r}")

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        """The first of ``name`` and Django's alternatives that no stored file holds."""
        token = _objects_only.set(True)
        try:
            available: str = super().get_available_name(name, max_length=max_length)
        finally:
            _objects_only.reset(token)
        return available

    def is_name_available(self, name: str, max_length: int | None = None) -> bool:
        """Whether ``name`` fits ``max_length`` and holds no file (any name, with
        ``allow_overwrite``)."""
        if max_length and len(name) > max_length:
            return False
        return self._allow_overwrite or not self.exists(name)

    def get_alternative_name(self, file_root: str, file_ext: str) -> str:
        """Django's ``root_XXXXXXX.ext``; with ``allow_overwrite``, the name itself (only
        ``max_length`` truncates it)."""
        if self._allow_overwrite:
            return f"{file_root}{file_ext}"
        alternative: str = super().get_alternative_name(file_root, file_ext)
        return alternative

    def exists(self, name: str) -> bool:
        """Whether a file named ``name`` exists, or a directory: a prefix that holds
        files (``exists("")`` is whether the storage holds anything)."""
        name = str(name).rstrip("/")
        if self._allow_overwrite and _objects_only.get():
            return False  # Django 4.2 asks exists() directly; the name is free to replace
        if not name:
            return self._is_directory("")
        key = _key(name)
        with _names():
            if self.storage.exists(key):
                return True
        return not _objects_only.get() and self._is_directory(key)

    def _is_directory(self, key: str) -> bool:
        try:
            return bool(self.storage.fs.isdir(key))
        except FileNotFoundError:
            return False

    def delete(self, name: str) -> None:
        """Delete ``name``; nothing happens when it does not exist. On a ``file``
        storage an empty directory is removed too, as ``FileSystemStorage`` does."""
        if not name:
            raise ValueError("The name must be given to delete().")
        key = _key(name)
        try:
            with _names():
                self.storage.delete(key)
        except FileNotFoundError:
            path = self.storage.local_path(key)
            if path and path.is_dir() and not path.is_symlink() and self._inside(path):
                os.rmdir(path)

    def _inside(self, path: os.PathLike[str]) -> bool:
        """Whether a local ``path`` resolves inside the root, not to the root itself (a
        linked parent may lead out of it)."""
        root = os.path.realpath(self.storage.config.root)
        real = os.path.realpath(path)
        return bool(os.path.commonpath([real, root]) == root != real)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        """``(directories, files)`` directly under ``path``; both empty when it has none."""
        prefix = str(path).strip("/")
        if prefix:
            local = self.storage.local_path(_key(prefix))
            if local is not None and not self._inside(local):
                return [], []  # a symlink out of the root: nothing of this storage's
        try:
            entries = self.storage.fs.ls(prefix, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return [], []
        directories: list[str] = []
        files: list[str] = []
        for entry in entries:
            base = str(entry["name"]).rstrip("/").rpartition("/")[2]
            if not base or is_temp(base):
                continue
            (directories if entry.get("type") == "directory" else files).append(base)
        return directories, files

    def size(self, name: str) -> int:
        """The size of ``name`` in bytes."""
        key = _key(name)
        with _names():
            return self.storage.stat(key).size

    def url(self, name: str | None) -> str:
        """The public URL of ``name`` (presigned on private storages); ``url(None)`` or
        ``url("")`` is the base URL. Leading slashes and backslashes are normalised as
        ``FileSystemStorage`` does; ``..`` raises :class:`SuspiciousFileOperation`."""
        relative = "" if name is None else str(name).replace("\\", "/").lstrip("/")
        if not relative:
            base = self.base_url
            if base is None:
                raise ValueError("This storage has no base URL.")
            return base
        key = _key(relative)
        with _names():
            return self.storage.url(key)

    def path(self, name: str) -> str:
        """The local path of ``name`` (the root for ``""``): only for ``file`` storages."""
        if not self.storage.backend.files:
            raise NotImplementedError("This backend doesn't support absolute paths.")
        if not str(name).strip("/"):
            return self.storage.config.root
        return str(self.storage.local_path(_key(name)))

    def get_accessed_time(self, name: str) -> datetime:
        """Last access of ``name`` (``file`` storages only; aware when ``USE_TZ``)."""
        return _datetime(os.path.getatime(self.path(name)))

    def get_created_time(self, name: str) -> datetime:
        """Creation of ``name``: the inode change time of a local file, the upload time
        of an object (objects are written whole, once); aware when ``USE_TZ``."""
        path = self.storage.local_path(_key(name))
        if path is not None:
            return _datetime(os.path.getctime(path))
        return self.get_modified_time(name)

    def get_modified_time(self, name: str) -> datetime:
        """Last modification of ``name``; aware (UTC) when ``USE_TZ``."""
        key = _key(name)
        with _names():
            mtime = self.storage.stat(key).mtime
        if mtime is None:
            raise NotImplementedError("This storage keeps no modification times.")
        return _datetime(mtime)


@_deconstructible("storage_dsn.django.ManifestDSNStorage")
class ManifestDSNStorage(ManifestFilesMixin, DSNStorage):  # type: ignore[misc]
    """:class:`DSNStorage` with Django's manifest of hashed static file names.

    ``collectstatic`` stores ``css/site.55e7cbb9ba48.css`` beside ``css/site.css`` and
    the ``staticfiles.json`` manifest, on any backend; ``{% static %}`` gives the hashed
    URL. Takes :class:`DSNStorage`'s arguments and ``ManifestStaticFilesStorage``'s
    (``manifest_storage``, and the class attributes ``manifest_strict``...). The manifest
    is read on first use, not when the storage is created, so settings import without
    the environment variable.
    """

    #: ``(paths, hash)`` of the manifest; ``None`` until first read.
    _manifest: tuple[dict[str, str], str] | None = None
    _initialising = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._initialising = True
        try:
            super().__init__(*args, **kwargs)
        finally:
            self._initialising = False
        self._manifest = None  # ManifestFilesMixin.__init__ loaded nothing: see load_manifest

    def load_manifest(self) -> tuple[dict[str, str], str]:  # type: ignore[override]
        """The manifest's ``(paths, hash)``; nothing while the storage is being created
        (Django reads it there), so the environment is read on first use."""
        if self._initialising:
            return {}, ""
        return cast("tuple[dict[str, str], str]", super().load_manifest())

    @property
    def hashed_files(self) -> dict[str, str]:
        """The manifest's paths, read on first use."""
        return self._loaded()[0]

    @hashed_files.setter
    def hashed_files(self, value: dict[str, str]) -> None:
        self._manifest = (value, self._manifest[1] if self._manifest else "")

    @property
    def manifest_hash(self) -> str:
        """The manifest's hash, read on first use."""
        return self._loaded()[1]

    @manifest_hash.setter
    def manifest_hash(self, value: str) -> None:
        self._manifest = (self._manifest[0] if self._manifest else {}, value)

    def _loaded(self) -> tuple[dict[str, str], str]:
        if self._manifest is None:
            self._manifest = self.load_manifest()
        return self._manifest


class DSNFile(File):  # type: ignore[type-arg]  # generic in django-stubs only
    """A file of a :class:`DSNStorage`; closing it commits a write, and :meth:`open`
    reopens it from the storage (so a ``FieldFile`` can be read again after closing)."""

    def __init__(self, storage: DSNStorage, name: str, mode: str = "rb") -> None:
        super().__init__(storage._open_raw(name, mode), name)
        self._storage = storage
        self.mode = mode

    def __exit__(self, *exc_info: Any) -> None:
        # The storage's file decides: leaving by an exception discards a write.
        if self.file is not None:
            self.file.__exit__(*exc_info)

    def open(self, mode: str | None = None, *args: Any, **kwargs: Any) -> DSNFile:
        """Seek to the start of the open file, or reopen it from the storage."""
        if not self.closed:
            self.seek(0)
            return self
        self.mode = mode or self.mode
        self.file = self._storage._open_raw(str(self.name), self.mode)
        return self


def secret_keys() -> Sequence[str | bytes]:
    """Django's signing keys, oldest first: ``SECRET_KEY_FALLBACKS``, then ``SECRET_KEY``."""
    try:
        key = settings.SECRET_KEY
    except ImproperlyConfigured:  # Django refuses to hand out an empty one
        return []
    return [*getattr(settings, "SECRET_KEY_FALLBACKS", ()), key] if key else []


def _datetime(timestamp: float) -> datetime:
    if settings.USE_TZ:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return datetime.fromtimestamp(timestamp)


class _Source:
    """What ``_save`` uploads: a binary stream of ``content``, readable again from the
    start for each attempt."""

    def __init__(self, content: Any, path: str | None) -> None:
        self._content = content
        self._path = path
        self._opened: IO[bytes] | None = None

    def reopen(self) -> IO[bytes]:
        if self._opened is not None:
            self._opened.close()
        if self._path is not None:  # an upload on disk: its path (S3 sends it without a copy)
            self._opened = open(self._path, "rb")  # noqa: SIM115 (closed by _source)
            return self._opened
        return cast("IO[bytes]", _Chunks(self._content))

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()


@contextmanager
def _source(content: Any) -> Iterator[_Source]:
    """``content`` as a :class:`_Source`; one that cannot seek is spooled first, so a
    retry under a new name reads it whole again."""
    if hasattr(content, "temporary_file_path"):
        source = _Source(content, content.temporary_file_path())
        try:
            yield source
        finally:
            source.close()
        return
    if _seekable(content):
        yield _Source(content, None)
        return
    with tempfile.SpooledTemporaryFile(max_size=8 * 2**20) as spool:
        for chunk in content.chunks():
            spool.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
        spool.seek(0)
        yield _Source(File(spool), None)


def _seekable(content: Any) -> bool:
    try:
        return bool(content.seekable())
    except (AttributeError, ValueError, OSError):
        return False


class _Chunks:
    """A binary reader over a Django file's ``chunks()`` (text chunks as UTF-8), as
    ``FileSystemStorage`` writes them; the file is left open."""

    def __init__(self, content: Any) -> None:
        self._chunks = iter(content.chunks())
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk.encode("utf-8") if isinstance(chunk, str) else chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False
