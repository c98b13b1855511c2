"""The DSN reference, written from the code so it cannot drift (see generated.py).

``params_markdown(SCHEME)``
    The query parameters ``SCHEME`` accepts, read from the scheme registry, with the
    descriptions below. A registered parameter without a description, or a description
    for a parameter the code does not accept, is an error; so is a built-in scheme that
    no page documents (:func:`undocumented`).
``examples_markdown(DSNS)``
    For each DSN: what ``storage-dsn check`` reports, masked as the command masks it, and
    the URL of the key ``a b/ü.txt``, computed by the installed package. The backend row
    names the extra to install rather than whether this machine has it.
``errors_markdown(DSNS, missing=MODULE)``
    For each DSN: the error a user gets from ``open_storage``. A DSN that opens is an
    error. ``missing`` shows the error for an uninstalled extra.

As a Sphinx extension it fails the build when a generated region of a page is stale.
"""

from __future__ import annotations

import importlib.util
import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from storage_dsn import NoPublicURLError, StorageDSNError, open_storage, parse_dsn
from storage_dsn.cli.output import Output
from storage_dsn.dsn import secret_values
from storage_dsn.registry import get_scheme, schemes
from storage_dsn.schemes import BUILTIN
from storage_dsn.storage import clear_cache, make_resolver

SAMPLE_KEY = "a b/ü.txt"

COMMON = {
    "url": (
        "a URL or a path starting with ``/``, percent-encoded",
        "The public base URL of the storage root: ``url=%2Fmedia%2F`` or "
        "``url=https%3A%2F%2Fcdn.example.org%2Fmedia%2F``. Keys are appended to it, "
        "percent-encoded. Anything but ``http(s)://`` or ``/path`` is refused.",
    ),
    "domain": (
        "a host name",
        "The public host (a CDN): the base becomes ``https://DOMAIN/PREFIX/``.",
    ),
    "option.NAME": (
        "any; ``true``/``false`` and integers are converted",
        "Passed to the fsspec filesystem as its storage option ``NAME`` "
        "(``option.default_block_size=8388608``, ``option.use_listings_cache=true``).",
    ),
}


def _timeouts(retries: str, **override: tuple[str, str]) -> dict[str, tuple[str, str]]:
    """``connect_timeout``, ``read_timeout`` and ``retries``, as every remote scheme takes
    them; ``retries`` ends with how the scheme maps it."""
    return {
        "connect_timeout": (
            "seconds, above 0 (default ``5``)",
            "How long to wait for a connection, per attempt.",
        ),
        "read_timeout": (
            "seconds, above 0 (default ``10``)",
            "How long to wait for the next byte of an answer, per attempt: a stalled server "
            "fails a call after ``(retries + 1) x read_timeout`` seconds and backoff, never "
            "hangs it.",
        ),
        "retries": (
            "``0`` to ``20`` (default ``3``)",
            "Retries after the first attempt, with exponential backoff, for errors that may "
            + retries,
        ),
        **override,
    }


#: Descriptions of each scheme's own parameters, by the scheme's canonical name.
PARAMS: dict[str, dict[str, tuple[str, str]]] = {
    "file": {
        "fsync": (
            "``true``, ``false`` (default)",
            "``true`` fsyncs each written file and its directory before the rename that "
            "publishes it: durable across power loss, at the cost of a disk flush per "
            "write.",
        ),
    },
    "memory": {},
    "s3": {
        **_timeouts(
            "pass: 5xx, SlowDown, resets, timeouts, bodies cut short. Mapped to botocore's "
            "standard retry mode (s3fs) or obstore's retry settings."
        ),
        "auth": (
            "``s3v4`` (default), ``s3``",
            "The signature version. ``s3`` (legacy V2) is kept for old S3-compatible "
            "servers; presigned URLs then use V2 too.",
        ),
        "region_name": (
            "``eu-central-1``, ...",
            "The region, when the host does not give it (S3-compatible hosts). Overrides "
            "the one read from an AWS host.",
        ),
        "region": ("like ``region_name``", "An alias of ``region_name``; give one, not both."),
        "addressing_style": (
            "``auto`` (default), ``virtual``, ``path``",
            "How the bucket is addressed, in requests and public URLs. Dotted bucket names, "
            "IP addresses, ``localhost`` and hosts with a port are path style.",
        ),
        "endpoint_url": (
            "an ``http(s)://`` URL, percent-encoded",
            "The S3 API endpoint, instead of the one derived from the host.",
        ),
        "acl": (
            "a canned ACL: ``private``, ``public-read``, ...",
            "Sent with every upload (only when given). ``private`` also makes URLs presigned.",
        ),
        "qs_auth": (
            "``true``, ``false`` (default)",
            "``true``: ``url()`` returns presigned URLs (query-string authentication).",
        ),
        "expires": (
            "seconds, default ``3600``",
            "The lifetime of presigned URLs (at most 604800, seven days, for SigV4).",
        ),
        "token": (
            "a session token, percent-encoded",
            "Temporary credentials' session token, sent with requests and in presigned "
            "URLs as ``X-Amz-Security-Token``. Masked like the secret.",
        ),
        "public_endpoint_url": (
            "an ``http(s)://host[:port]`` URL, percent-encoded",
            "Where browsers reach the S3 server, when it is not where the app does "
            "(docker-compose: the app at ``http://minio:9000``, the browser at "
            "``http://localhost:9000``). I/O uses the storage's own endpoint; public and "
            "presigned URLs, upload URLs and forms use this one and are signed for its host.",
        ),
        "cache_control": (
            "a ``Cache-Control`` value, percent-encoded",
            "Sent with every upload (``public%2C%20max-age%3D31536000``), and part of "
            "signed upload URLs and forms.",
        ),
        "storage_class": (
            "an S3 storage class: ``STANDARD_IA``, ``INTELLIGENT_TIERING``, ...",
            "Sent with every upload, and part of signed upload URLs and forms.",
        ),
        "sse": (
            "``AES256``, ``aws:kms``",
            "Server-side encryption requested on every upload.",
        ),
        "sse_kms_key_id": (
            "a KMS key ID, ARN or ``alias/NAME``",
            "The KMS key for ``sse=aws:kms`` (refused without it).",
        ),
        "engine": (
            "``s3fs`` (default), ``obstore``",
            "The client library. ``obstore`` (extra ``obstore``) costs about a tenth of "
            "s3fs's client CPU per request; it cannot send ACLs or sign with V2 and says so "
            "when the DSN is parsed.",
        ),
    },
    "gs": {
        **_timeouts(
            "pass: 5xx, 408, 429, resets, timeouts. Mapped to gcsfs's retry loop; the "
            "timeouts to the aiohttp timeout of each request (per connection and per read, "
            "never a total: a large object takes as long as bytes keep coming)."
        ),
        "project": ("a project ID", "The Google Cloud project, passed to gcsfs."),
        "endpoint_url": (
            "an ``http(s)://host[:port]`` URL, percent-encoded",
            "Where requests go instead of ``https://storage.googleapis.com`` (``gs:``/``gcs:`` "
            "only; ``gs+http:`` takes it from the host). Public URLs default to "
            "``ENDPOINT/BUCKET/PREFIX/``.",
        ),
        "qs_auth": (
            "``true``, ``false`` (default)",
            "``true``: ``url()`` returns V4 signed URLs, signed offline with the "
            "service-account key of ``option.token`` (a path to its JSON key file, or the "
            "JSON itself) or ``GOOGLE_APPLICATION_CREDENTIALS``. URLs with a download name "
            "or content type, and upload URLs, are signed either way.",
        ),
        "expires": (
            "seconds, default ``3600``",
            "The lifetime of signed URLs (at most 604800, seven days, GCS's limit).",
        ),
    },
    "az": {
        **_timeouts(
            "pass: 5xx, 408, resets, timeouts. Mapped to the Azure SDK client's exponential "
            "retry policy (waits about 2, 4, 8 s) and its ``connection_timeout`` and "
            "``read_timeout``, for every request (adlfs sets them on transfers only). A "
            "download whose body stalls is asked again up to three times by the SDK."
        ),
        "endpoint_url": (
            "an ``http(s)://`` URL, percent-encoded",
            "The account URL (``http://127.0.0.1:10000/devstoreaccount1`` for Azurite), "
            "instead of ``https://ACCOUNT.blob.core.windows.net`` (``az+http``: "
            "``http://HOST:PORT/ACCOUNT``). Public URLs follow it.",
        ),
        "qs_auth": (
            "``true``, ``false`` (default)",
            "``true``: ``url()`` returns SAS URLs (a read-only SAS for the one blob), "
            "signed offline with the account key. URLs with a download name or content "
            "type, and upload URLs, are signed either way.",
        ),
        "expires": (
            "seconds, default ``3600``",
            "The lifetime of SAS URLs (at most 604800, seven days, as on S3 and GCS: a SAS "
            "from the account key can only be revoked by rotating the key).",
        ),
    },
    "sftp": {
        **_timeouts(
            "pass: a connection refused, reset, dropped or timed out is made again, with "
            "backoff (about 1, 2, 4 s); an SFTP operation on an open connection is not "
            "repeated.",
            connect_timeout=(
                "seconds, above 0 (default ``5``)",
                "How long the TCP connection, the SSH handshake and the login may take "
                "together, per attempt (asyncssh's ``connect_timeout``).",
            ),
            read_timeout=(
                "seconds, above 0 (default ``10``)",
                "How long the server may stay silent. asyncssh has no read timeout: after "
                "half of it a keepalive is sent, and when nothing answers by the end the "
                "connection is dropped, so every call waiting on it fails with "
                "``TimeoutError`` (the next call connects again). An idle connection "
                "exchanges a keepalive that often.",
            ),
        ),
        "key_file": (
            "an absolute path (or ``~/...``), percent-encoded",
            "The private key to log in with (OpenSSH format, unencrypted). Without it, "
            "asyncssh tries the SSH agent and ``~/.ssh/id_*``; a password in the DSN is "
            "tried too.",
        ),
        "known_hosts": (
            "an absolute path (or ``~/...``), or ``none``",
            "The OpenSSH ``known_hosts`` file the server's host key must be in; default "
            "``~/.ssh/known_hosts``. An unknown or changed key fails the first I/O with "
            "``HostKeyError``. ``none`` accepts any key and logs a warning: only for a "
            "throwaway server on a network you trust.",
        ),
    },
}

#: Schemes that share a parser are documented once, under the first name.
ALIASES = {"s3+http": "s3", "gcs": "gs", "gs+http": "gs", "abfs": "az", "az+http": "az"}


def _cell(text: str) -> str:
    """A Markdown table cell: ````code```` spans as ``code``, pipes escaped."""
    return text.replace("``", "`").replace("|", "\\|")


def _table(rows: Iterable[tuple[str, str, str]]) -> str:
    lines = ["| parameter | values | meaning |", "|---|---|---|"]
    lines += [f"| `{p}` | {_cell(v)} | {_cell(d)} |" for p, v, d in rows]
    return "\n".join(lines) + "\n"


def params_markdown(name: str) -> str:
    """The parameter table of scheme ``name`` (``common``: the parameters of all)."""
    if name == "common":
        return _table((p, v, d) for p, (v, d) in COMMON.items())
    scheme = get_scheme(name)
    documented = PARAMS.get(ALIASES.get(name, name))
    if documented is None:
        raise ValueError(f"dsn-params: no descriptions for scheme {name!r} in dsnref.py")
    undocumented = sorted(scheme.params - documented.keys())
    stale = sorted(documented.keys() - scheme.params)
    if undocumented or stale:
        raise ValueError(
            f"dsn-params {name}: the code accepts {undocumented or 'nothing more'} "
            f"without a description; described but not accepted: {stale or 'none'}"
        )
    if not documented:
        return "No parameters of its own: `url`, `domain` and `option.*` only.\n"
    return _table((p, v, d) for p, (v, d) in sorted(documented.items()))


def undocumented(texts: Iterable[str]) -> list[str]:
    """Built-in schemes that no ``dsn-params`` region in ``texts`` documents."""
    seen: set[str] = set()
    for text in texts:
        for name in re.findall(r"<!-- generated: dsn-params (\S+)", text):
            seen.add(name)
            seen.update(alias for alias, canonical in ALIASES.items() if canonical == name)
    builtin = {scheme.name for scheme in BUILTIN}
    return sorted((builtin & set(schemes)) - seen)


def _backend_row(dsn: str) -> str:
    config = parse_dsn(dsn)
    scheme = get_scheme(config.scheme)
    if scheme.requires_for is not None:
        needed = list(scheme.requires_for(config))
    else:
        needed = [(module, scheme.extra) for module in scheme.requires]
    if not needed:
        return f"fsspec ({config.protocol}), built in"
    module, extra = needed[0]
    return f'{module} ({config.protocol}), pip install "storage-dsn[{extra}]"'


def examples_markdown(dsns: Iterable[str]) -> str:
    """For each DSN: ``storage-dsn check``'s report and the URL of :data:`SAMPLE_KEY`."""
    out = []
    for dsn in dsns:
        config = parse_dsn(dsn)
        rows = [
            (k, _backend_row(dsn) if k == "backend" else v)
            for k, v in get_scheme(config.scheme).describe(config)
            if k != "on disk"  # the machine building the docs is not the reader's
        ]
        try:
            url = make_resolver(config)(SAMPLE_KEY, None)
            if config.signed_urls:
                url = url.split("?", 1)[0] + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&..."
        except NoPublicURLError:
            url = "(NoPublicURLError)"
        rows.append((f"url({SAMPLE_KEY!r})", url))
        width = max(len(k) for k, _ in rows) + 2
        text = "\n".join(f"{k:<{width}}{v}" for k, v in rows)
        scrubber = Output(io.StringIO(), io.StringIO())  # as the command masks output
        scrubber.hide(secret_values(config))
        lines = [f"$ storage-dsn check '{config.redacted()}'", *text.splitlines()]
        text = "\n".join(scrubber.scrub(line) for line in lines)
        out.append(f"```text\n{text}\n```\n")
    return "\n".join(out)


@contextmanager
def _without(module: str | None) -> Iterator[None]:
    if module is None:
        yield
        return
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == module else real(name, *args, **kwargs)

    importlib.util.find_spec = find_spec  # type: ignore[assignment]
    from storage_dsn.schemes import base

    base._installed.discard(module)  # forget that it was found, for this run
    try:
        yield
    finally:
        importlib.util.find_spec = real


def errors_markdown(dsns: Iterable[str], missing: str | None = None) -> str:
    """For each DSN: the error ``open_storage`` raises for it."""
    out = []
    for dsn in dsns:
        clear_cache()
        try:
            with _without(missing):
                open_storage(dsn)
        except StorageDSNError as exc:
            out.append(f"```text\n>>> open_storage({dsn!r})\n{type(exc).__name__}: {exc}\n```\n")
        else:
            raise ValueError(f"dsn-error: {dsn!r} opened without an error")
    return "\n".join(out)


def _check_pages(app: Any, env: Any) -> None:
    import generated
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for page in generated.stale():
        logger.warning("%s is stale: run python docs/_ext/generated.py", page.name)
    missing = undocumented(page.read_text(encoding="utf-8") for page in generated.pages())
    if missing:
        logger.warning("dsnref: no dsn-params region for the schemes %s", ", ".join(missing))


def setup(app: Any) -> dict[str, Any]:
    app.connect("env-check-consistency", _check_pages)
    return {"version": "2", "parallel_read_safe": True}
