"""``storage-dsn check --public DSN``: would a browser load what this storage stores?

It stores a probe (``storage-dsn-public-check-<hex>.txt``), fetches the probe's ``url()``
anonymously over HTTP, as a browser would, and always deletes it. Exit 0 when the probe
came back; 1 with the reason and the fix to try otherwise: 403, the server refuses
anonymous reads (the bucket policy or ACL); 404, the URL points elsewhere (``url=`` or
``domain=``); no connection, the host cannot be reached from here. A storage whose URLs
are paths on the site (``url=/media/``) is served by the app: there is nothing to fetch.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from ..errors import NoPublicURLError
from ..storage import Storage
from .output import Output, one_line

__all__ = ["PROBE_PREFIX", "TIMEOUT", "check_public"]

#: Probes are named so that one left behind by a killed run is recognisable.
PROBE_PREFIX = "storage-dsn-public-check-"
#: Seconds to wait for the public URL to connect and answer.
TIMEOUT = 10.0


def check_public(storage: Storage, out: Output, *, timeout: float = TIMEOUT) -> int:
    """Run the check; return the exit code."""
    key = f"{PROBE_PREFIX}{secrets.token_hex(6)}.txt"
    try:
        url = storage.url(key)
    except NoPublicURLError as exc:
        out.line(f"{'public':<12} FAILED: {exc}")
        return 1
    if not urlsplit(url).scheme:
        out.line(
            f"{'public':<12} URLs are paths on your site ({url.rsplit('/', 1)[0]}/...): the "
            "app serves them (storage_dsn.flask, or media_urlpatterns() on Django), so there "
            "is nothing to fetch from here; open one in a browser with the app running"
        )
        return 0
    payload = f"storage-dsn public check {key}\n".encode()
    storage.write_bytes(key, payload)
    try:
        out.line(f"{'probe':<12} {key}")
        out.line(f"{'url':<12} {_shown(url)}", scrub=False)
        problem = _fetch(url, payload, timeout)
    finally:
        try:
            storage.delete(key)
        except Exception as exc:  # the verdict still stands; say what is left behind
            out.error(f"could not delete the probe {key}: {one_line(exc)}")
    if problem is None:
        signed = " (through a signed URL, while it is valid)" if "?" in url else ""
        out.line(f"{'public':<12} ok: a browser can load it{signed}")
        return 0
    status, reason = problem
    out.line(f"{'public':<12} FAILED: {reason}")
    if status in (401, 403):
        out.line(f"{'fix':<12} {storage.backend.public_read_fix()}")
    return 1


def _shown(url: str) -> str:
    """The URL without its query: a presigned one's signature stays out of logs."""
    base, _, query = url.partition("?")
    return f"{base}?... (signed)" if query else base


def _fetch(url: str, payload: bytes, timeout: float) -> tuple[int | None, str] | None:
    """``None`` when an anonymous GET of ``url`` returns ``payload``; else (the HTTP
    status or ``None``, what went wrong)."""
    import urllib.error  # here: urllib.request costs every other command ~25 ms to import
    import urllib.request

    host = urlsplit(url).netloc
    if not url.lower().startswith(("http://", "https://")):
        return None, "the URL is not http(s), which a browser could load"
    # Checked above: http(s) only. No handler that could add credentials is installed:
    # this is what a browser without cookies sends.
    agent = {"User-Agent": "storage-dsn check --public"}
    request = urllib.request.Request(url, headers=agent)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(len(payload) + 1)
    except urllib.error.HTTPError as exc:
        return exc.code, _refusal(exc.code, host)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        said = one_line(reason) if isinstance(reason, BaseException) else str(reason)
        return None, (
            f"cannot reach {host} from here ({said}): check the url=/domain= host, its DNS "
            "and that it serves HTTP(S)"
        )
    if body != payload:
        return 200, (
            f"{host} answers, but not with the probe: the url= or domain= parameter points "
            "somewhere else than this storage's root"
        )
    return None


def _refusal(status: int, host: str) -> str:
    if status in (401, 403):
        return (
            f"{host} refused an anonymous read (HTTP {status}): the objects are not public "
            "(on S3: the bucket policy or the object ACL)"
        )
    if status == 404:
        return (
            f"{host} has no object at the probe's URL (HTTP 404): the url= or domain= "
            "parameter does not point at this storage's root"
        )
    return f"{host} answered HTTP {status} to an anonymous read"
