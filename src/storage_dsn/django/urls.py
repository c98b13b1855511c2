"""``media_urlpatterns()``: the hardened media server of :mod:`storage_dsn.serving` in a
Django URLconf, for the storage in ``STORAGES["default"]`` (or any :class:`DSNStorage`).

::

    # urls.py (the root URLconf)
    from storage_dsn.django import media_urlpatterns

    urlpatterns = [path("", include("blog.urls")), *media_urlpatterns()]

What it gives depends on the storage, decided once, when the URLconf is imported:

* a local storage (``file``, ``memory``) whose public URL is a path on this site
  (``url=%2Fmedia%2F``): that path serves its files whatever ``DEBUG`` says, with the
  Flask blueprint's protections (ETag and 304, ``Range``, ``nosniff`` and
  ``Content-Security-Policy: sandbox``, 404 for ``..``, dot-files, directories and
  symlinks out of the root), and takes the direct uploads that
  :meth:`DSNStorage.upload_url <storage_dsn.django.DSNStorage.upload_url>` and
  :meth:`~storage_dsn.django.DSNStorage.upload_form` sign with ``SECRET_KEY``;
* a remote storage: ``MEDIA_URL`` + name (``STATIC_URL`` + name for the
  ``"staticfiles"`` alias) answers 302 to the name's public URL (``Cache-Control:
  no-store`` when it is presigned), so old links keep working;
* a local storage whose public URL is on another host, or none: no pattern;
* no DSN in the environment (``makemigrations`` in CI): no pattern.

Django's own ``static()`` helper serves only under ``DEBUG``, without ``Range`` or these
protections, and follows symlinks out of the root.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.storage import storages
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import URLPattern, re_path
from django.views.decorators.csrf import csrf_exempt

from ..errors import ConfigurationError
from ..serving import MediaServer, mount_prefix
from .storage import DSNStorage

__all__ = ["media_urlpatterns"]


def media_urlpatterns(
    storage: DSNStorage | str = "default",
    *,
    max_age: int = 0,
    x_accel: str | None = None,
) -> list[URLPattern]:
    """URL patterns that serve, redirect to, and take uploads for ``storage``'s files.

    ``storage`` is a :class:`DSNStorage` or an alias of ``STORAGES``. ``max_age``
    (seconds) makes responses ``Cache-Control: public, max-age=N`` (default ``no-cache``:
    revalidate, a cheap 304); ``x_accel``, a path prefix, hands bodies to nginx with
    ``X-Accel-Redirect``. Add the patterns to the root URLconf, after the app's own.
    """
    found = storages[storage] if isinstance(storage, str) else storage
    if not isinstance(found, DSNStorage):
        raise TypeError(f"media_urlpatterns() serves a DSNStorage, not {type(found).__name__}")
    try:
        opened = found.storage
    except ConfigurationError:  # no DSN here (a CI job, a management command): no media
        return []
    public = opened.config.public_url or ""
    on_this_site = public.startswith("/")
    if opened.backend.local:
        if not on_this_site:
            return []  # another server (a CDN, nginx) has the files' URLs
        prefix = mount_prefix(public)
        uploads = found.local_uploads()
        server = MediaServer(
            opened, serve=True, redirect=False, max_age=max_age, x_accel=x_accel, uploads=uploads
        )
    else:
        if on_this_site:
            return []  # a proxy on this site answers for the files
        # Old links to MEDIA_URL (STATIC_URL for the static files) find the files.
        links = settings.STATIC_URL if storage == "staticfiles" else settings.MEDIA_URL
        prefix = mount_prefix(links or "/media/")
        server = MediaServer(opened, serve=False, redirect=True, max_age=max_age)
    route = rf"^{re.escape(prefix[1:])}(?P<key>.*)\Z"
    return [re_path(route, _view(server), name="media")]


def _view(server: MediaServer) -> Any:
    # Uploads carry their own signature: Django's CSRF token has no part in them.
    @csrf_exempt
    def media(request: HttpRequest, key: str) -> HttpResponseBase:
        return _respond(server, request, key)

    return media


def _respond(server: MediaServer, request: HttpRequest, key: str) -> HttpResponseBase:
    """The media server's WSGI answer as a Django response."""
    # The request's META is its WSGI environ (or, under ASGI, the same variables); the body
    # is read through the request, which stops at its Content-Length.
    environ: dict[str, Any] = {**request.META, "wsgi.input": request}
    # Django sends the body itself (and closes it): a WSGI file wrapper it cannot iterate.
    environ.pop("wsgi.file_wrapper", None)
    # Django reads no chunked body (no Content-Length reads as empty): 411, not an empty file.
    environ.pop("wsgi.input_terminated", None)
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.append((status, headers))

    body: Iterable[bytes] = server.respond(environ, start_response, key)
    status, headers = started[-1]
    code, _, reason = status.partition(" ")
    response: HttpResponseBase
    if isinstance(body, list):
        response = HttpResponse(b"".join(body), status=int(code), reason=reason)
    elif isinstance(request, ASGIRequest):
        response = StreamingHttpResponse(_read_async(body), status=int(code), reason=reason)
    else:
        response = StreamingHttpResponse(body, status=int(code), reason=reason)
    if not any(name.lower() == "content-type" for name, _ in headers):
        del response["Content-Type"]  # a 304 or a redirect has none
    for name, value in headers:
        response[name] = value
    return response


async def _read_async(body: Iterable[bytes]) -> AsyncIterator[bytes]:
    """The body one chunk at a time, each read in a worker thread.

    Under ASGI, Django sends a streaming response asynchronously, and a body it can only
    iterate synchronously it first reads whole into a list: a 2 GB video would be 2 GB of
    memory per request. This keeps it to one chunk, and closes the file however the
    response ends (a client that goes away included).
    """
    chunks = iter(body)

    def step() -> bytes | None:
        return next(chunks, None)

    read = sync_to_async(step, thread_sensitive=False)
    try:
        while (chunk := await read()) is not None:
            yield chunk
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=False)()
