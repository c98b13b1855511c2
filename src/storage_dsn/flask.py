"""Flask integration: the :class:`Media` extension and its ``media`` blueprint.

::

    from storage_dsn.flask import Media

    media = Media(app)            # or Media() and media.init_app(app) in a factory
    media.url("a.jpg")            # also {{ media_url("a.jpg") }} in templates
    media.upload_form("avatars/", max_size=5 * 2**20, content_type="image/")
    url_for("media.serve", key="a.jpg")

Configuration (read once, in :meth:`Media.init_app`):

``STORAGE_DSN``
    The storage. Default: ``STORAGE`` (the name the platform's Flask guide uses, when set
    to a DSN), else ``DEFAULT_STORAGE_DSN`` from the environment, else
    ``file://{app.instance_path}/media/?url=%2Fmedia%2F``, with a warning logged (logger
    ``storage_dsn.flask``) unless the app is in debug or testing mode: a container's disk
    is lost on the next deploy. ``STORAGE`` and ``STORAGE_DSN`` set to different DSNs is a
    :class:`~storage_dsn.errors.ConfigurationError`.
``MEDIA_SERVE``
    ``None`` (default): serve files from this app when the storage is ``file`` or
    ``memory`` and its public URL is a path (``/media/``); ``True``/``False`` force it.
``MEDIA_MAX_AGE``
    Seconds for ``Cache-Control: public, max-age=N``; ``0`` (default) sends ``no-cache``:
    browsers revalidate, which a strong ETag makes a cheap 304.
``MEDIA_REDIRECT``
    ``True`` (default): when not serving (remote storages), ``GET /media/<key>`` answers
    302 to ``storage.url(key)``, presigned URLs included.
``MEDIA_X_ACCEL``
    ``None`` (default); a path prefix such as ``/protected-media/`` makes responses hand
    the body to nginx with ``X-Accel-Redirect`` instead of sending it.

Direct uploads: :meth:`Media.upload_url` and :meth:`Media.upload_form` give a browser a
presigned ``PUT`` URL or a ``POST`` form. Remote storages sign their own (S3, Azure, GCS);
for ``file`` and ``memory`` storages the blueprint takes the same requests, signed with
the app's ``SECRET_KEY`` (and ``SECRET_KEY_FALLBACKS``), with the same limits (see
:mod:`storage_dsn.uploads`).

The blueprint is mounted at the path of the storage's public URL (``/media/`` when the
public URL is absolute or missing). For ``file`` storages the same server also runs as
WSGI middleware in front of the app, so media requests skip Flask's routing and request
hooks, as whitenoise does for static files; ``url_for("media.serve", ...)`` still works.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, current_app
from werkzeug.utils import secure_filename

from .errors import ConfigurationError, StorageDSNError
from .serving import MediaServer, StartResponse, _path_info, mount_prefix
from .storage import Storage, open_storage
from .uploads import MAX_UPLOAD_NAME, LocalUploads

if TYPE_CHECKING:
    from werkzeug.datastructures import FileStorage

    from .urls import UploadForm

__all__ = ["EXTENSION_KEY", "Media", "MediaState"]

EXTENSION_KEY = "storage_dsn"
DEFAULT_PREFIX = "/media/"
#: The platform's Flask guide configures ``STORAGE = os.environ.get("DEFAULT_STORAGE_DSN")``.
ALIAS = "STORAGE"

log = logging.getLogger(__name__)
# Instance folders already warned about: an app factory called per test or per worker
# thread would otherwise repeat the same warning.
_warned: set[str] = set()


class MediaState:
    """What :class:`Media` keeps per app, in ``app.extensions["storage_dsn"]``."""

    def __init__(
        self,
        storage: Storage,
        server: MediaServer,
        prefix: str,
        uploads: LocalUploads | None = None,
    ) -> None:
        self.storage = storage
        self.server = server
        #: Where the blueprint is mounted, with slashes at both ends.
        self.prefix = prefix
        #: Signs and takes direct uploads for a local storage; ``None`` for remote ones.
        self.uploads = uploads


class Media:
    """Media storage for Flask apps, from ``STORAGE_DSN`` or ``DEFAULT_STORAGE_DSN``.

    Keeps no reference to an app: several apps (an app factory, tests) can share one
    ``Media`` object, each with its own storage.
    """

    def __init__(self, app: Flask | None = None, *, environ: Mapping[str, str] = os.environ):
        self._environ = environ
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read the configuration, open the storage and register the ``media`` blueprint."""
        config = app.config
        config["STORAGE_DSN"] = _configured_dsn(app, self._environ)
        config.setdefault("MEDIA_SERVE", None)
        config.setdefault("MEDIA_MAX_AGE", 0)
        config.setdefault("MEDIA_REDIRECT", True)
        config.setdefault("MEDIA_X_ACCEL", None)
        storage = open_storage(config["STORAGE_DSN"], environ=self._environ)
        public = storage.config.public_url or ""
        on_this_app = public.startswith("/")
        serve = config["MEDIA_SERVE"]
        if serve is None:
            serve = on_this_app and storage.backend.local
        prefix = mount_prefix(public) if on_this_app else DEFAULT_PREFIX
        # Only this app can take uploads into a local storage; remote ones sign their own.
        uploads = (
            LocalUploads(storage, prefix, functools.partial(_secret_keys, app))
            if storage.backend.local
            else None
        )
        server = MediaServer(
            storage,
            serve=bool(serve),
            # A public URL on this app would redirect to itself: answer 404 instead.
            redirect=bool(config["MEDIA_REDIRECT"]) and not on_this_app,
            max_age=int(config["MEDIA_MAX_AGE"]),
            x_accel=config["MEDIA_X_ACCEL"],
            uploads=uploads,
        )
        app.extensions[EXTENSION_KEY] = MediaState(storage, server, prefix, uploads)
        app.register_blueprint(_make_blueprint(), url_prefix=prefix.rstrip("/"))
        app.add_template_global(media_url, "media_url")
        if serve and storage.backend.files:
            app.wsgi_app = _MediaMiddleware(app.wsgi_app, server, prefix)  # type: ignore[method-assign]

    @property
    def storage(self) -> Storage:
        """The current app's :class:`~storage_dsn.Storage`."""
        return _state().storage

    def url(
        self,
        key: str,
        *,
        expires: int | None = None,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """The public URL of ``key`` in the current app's storage.

        ``download_name`` and ``content_type`` override the response's
        ``Content-Disposition`` and ``Content-Type``, as :meth:`Storage.url
        <storage_dsn.Storage.url>` does; on a local storage the blueprint honours them.
        """
        return media_url(
            key, expires=expires, download_name=download_name, content_type=content_type
        )

    def upload_url(
        self,
        key: str,
        *,
        expires: int | None = None,
        content_type: str | None = None,
        max_size: int | None = None,
    ) -> str:
        """A URL a browser may ``PUT`` ``key`` to (the request body is the file).

        Remote storages give :meth:`Storage.upload_url <storage_dsn.Storage.upload_url>`;
        a local one a URL on the media blueprint signed with ``SECRET_KEY`` (a
        :class:`RuntimeError` without one). With ``content_type`` the upload must declare
        that type. ``max_size`` (bytes) is enforced on local storages only: a presigned
        S3, Azure or GCS ``PUT`` cannot bound its size, so there it is a
        :class:`~storage_dsn.StorageDSNError` (use :meth:`upload_form`, whose policy can).
        """
        state = _state()
        if state.uploads is not None:
            return state.uploads.upload_url(
                key, expires=expires, content_type=content_type, max_size=max_size
            )
        if max_size is not None:
            raise StorageDSNError(
                f"a presigned PUT to {state.storage.config.scheme!r} storage cannot limit its "
                "size; use upload_form(..., max_size=...) for a bounded upload"
            )
        return state.storage.upload_url(key, expires=expires, content_type=content_type)

    def upload_form(
        self,
        key: str,
        *,
        expires: int | None = None,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> UploadForm:
        """An :class:`~storage_dsn.UploadForm` for a browser's multipart ``POST``.

        ``key`` ending in ``/`` takes any file name under it (the form's ``key`` field is
        ``prefix${filename}``); ``content_type`` ending in ``/`` or ``/*`` is a prefix,
        which the page fills in as the ``Content-Type`` field; ``max_size`` bounds the
        file in bytes. Remote storages give :meth:`Storage.upload_form
        <storage_dsn.Storage.upload_form>` (an S3 POST policy); a local one a form that
        posts to the media blueprint, signed with ``SECRET_KEY``.
        """
        state = _state()
        if state.uploads is not None:
            return state.uploads.upload_form(
                key, expires=expires, max_size=max_size, content_type=content_type
            )
        return state.storage.upload_form(
            key, expires=expires, max_size=max_size, content_type=content_type
        )

    def save(
        self,
        file: FileStorage,
        key: str | None = None,
        *,
        prefix: str = "",
        overwrite: bool = False,
    ) -> str:
        """Store an uploaded file and return its key.

        Without ``key``, the key is ``prefix`` plus a safe version of the client's file name
        (``secure_filename``: no directories, no dot-files); the client's path is never
        trusted. An existing key is kept, and the new file gets a random suffix, unless
        ``overwrite=True``; the write itself never replaces an object (see
        :meth:`Storage.save <storage_dsn.Storage.save>`), so two uploads of one name at
        once both land. The request size limit is Flask's ``MAX_CONTENT_LENGTH``.
        """
        storage = _state().storage
        if key is None:
            key = prefix + _safe_name(file.filename, file.mimetype)
        if overwrite:
            return storage.save(key, file.stream)
        stream = file.stream
        start = stream.tell()
        candidate = key if not storage.exists(key) else _suffixed(key)
        for _ in range(10):
            try:
                return storage.save(candidate, stream, overwrite=False)
            except FileExistsError:  # taken since the check: another upload won
                stream.seek(start)
                candidate = _suffixed(key)
        raise FileExistsError(key)


def media_url(
    key: str,
    *,
    expires: int | None = None,
    download_name: str | None = None,
    content_type: str | None = None,
) -> str:
    """Jinja global ``media_url(key)``: the public URL of ``key`` in the current app
    (``media_url(key, download_name="Report.pdf")`` for a download link)."""
    return _state().storage.url(
        key, expires=expires, download_name=download_name, content_type=content_type
    )


def _configured_dsn(app: Flask, environ: Mapping[str, str]) -> str:
    """``STORAGE_DSN``, its alias ``STORAGE``, ``DEFAULT_STORAGE_DSN``, or the instance
    folder (with a warning where a lost disk would lose media)."""
    dsn = app.config.get("STORAGE_DSN") or None
    alias = app.config.get(ALIAS)
    alias = alias if isinstance(alias, str) and alias else None  # another extension's STORAGE
    if dsn and alias and dsn != alias:
        # Neither value is shown: a DSN carries its secret.
        raise ConfigurationError(
            f"the app config sets both STORAGE_DSN and {ALIAS}, to different DSNs; "
            f"set only STORAGE_DSN ({ALIAS} is read as its alias when STORAGE_DSN is not set)"
        )
    found = dsn or alias or environ.get("DEFAULT_STORAGE_DSN")
    if found:
        return str(found)
    media = os.path.join(app.instance_path, "media")
    if not (app.debug or app.testing) and media not in _warned:
        _warned.add(media)
        log.warning(
            "no STORAGE_DSN in the app config and no DEFAULT_STORAGE_DSN in the environment: "
            "media is stored in %s, on this machine's disk; in a container it will be lost "
            "on the next deploy. Set DEFAULT_STORAGE_DSN in the environment (or STORAGE_DSN "
            "in the app config) to the storage's DSN, e.g. s3://KEY:SECRET@BUCKET.s3."
            "REGION.amazonaws.com/",
            media,
        )
    return f"file://{media}/?url=%2Fmedia%2F"


def _secret_keys(app: Flask) -> list[str | bytes]:
    """The app's signing keys, oldest first, as Flask's sessions take them."""
    if not app.secret_key:
        return []
    return [*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key]


def _state() -> MediaState:
    try:
        state: MediaState = current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError("Media.init_app(app) was not called for this app") from None
    return state


def _make_blueprint() -> Blueprint:
    bp = Blueprint("media", __name__)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    # The root takes upload forms' POSTs, as a bucket's URL does.
    @bp.route("/", endpoint="upload", methods=methods, provide_automatic_options=False)
    @bp.route("/<path:key>", endpoint="serve", methods=methods, provide_automatic_options=False)
    def serve(key: str = "") -> Any:
        server = _state().server

        def respond(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            return server.respond(environ, start_response, key)

        return respond  # Flask runs a returned WSGI callable as the response

    return bp


class _MediaMiddleware:
    """Serves ``prefix...`` paths before the app sees them; passes everything else on."""

    def __init__(self, app: Any, server: MediaServer, prefix: str) -> None:
        self.app = app
        self.server = server
        self.prefix = prefix

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        path = _path_info(environ)
        if path.startswith(self.prefix):
            return self.server.respond(environ, start_response, path[len(self.prefix) :])
        return self.app(environ, start_response)


def _safe_name(filename: str | None, mimetype: str | None) -> str:
    import mimetypes

    name = secure_filename(filename or "")
    if not name or name.startswith("."):
        ext = mimetypes.guess_extension(mimetype or "") or ""
        name = f"upload{ext}"
    if len(name) > MAX_UPLOAD_NAME:  # secure_filename's names are ASCII: chars are bytes
        stem, dot, ext = name.rpartition(".")
        if not dot or len(ext) > 16:
            stem, ext = name, ""
        keep = MAX_UPLOAD_NAME - len(ext) - len(dot)
        name = f"{stem[:keep]}{dot}{ext}" if ext else name[:MAX_UPLOAD_NAME]
    return name


def _suffixed(key: str) -> str:
    """``key`` with a random suffix before its extension: ``a/cat-1f2e3d4c.png``."""
    head, slash, name = key.rpartition("/")
    stem, dot, ext = name.partition(".")
    return f"{head}{slash}{stem}-{secrets.token_hex(4)}{dot}{ext}"
