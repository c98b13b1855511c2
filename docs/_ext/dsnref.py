"""Sphinx directives that write the DSN reference from the code, so it cannot drift.

``dsn-params SCHEME``
    The query parameters ``SCHEME`` accepts, read from the scheme registry, with the
    descriptions below. A registered parameter without a description, or a description
    for a parameter the code does not accept, fails the build; so does a built-in scheme
    that no page documents.
``dsn-example``
    For each DSN in the body: what ``storage-dsn check`` reports, masked as the command
    masks it, and the URL of the key ``a b/ü.txt``, computed by the installed package.
    The backend row names the extra to install rather than whether this machine has it.
``dsn-error``
    For each DSN in the body: the error a user gets from ``open_storage``. A DSN that
    opens fails the build. ``:missing: MODULE`` shows the error for an uninstalled extra.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

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
            "pass: 5xx, SlowDown, resets, timeouts, bodies cut short. Mapped to botocore's "
            "standard retry mode (s3fs) or obstore's retry settings.",
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
        "engine": (
            "``s3fs`` (default), ``obstore``",
            "The client library. ``obstore`` (extra ``obstore``) costs about a tenth of "
            "s3fs's client CPU per request; it cannot send ACLs or sign with V2 and says so "
            "when the DSN is parsed.",
        ),
    },
    "gs": {
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


def _literal(text: str, language: str = "text") -> nodes.literal_block:
    block = nodes.literal_block(text, text)
    block["language"] = language
    return block


def _cell(text: str) -> nodes.entry:
    """A table cell; ````code```` spans become literals."""
    para = nodes.paragraph()
    for i, part in enumerate(text.split("``")):
        if part:
            para += nodes.literal(part, part) if i % 2 else nodes.Text(part)
    return nodes.entry("", para)


def _table(headers: list[str], rows: list[list[str]]) -> list[Any]:
    table = nodes.table()
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in (18, 30, 52)[: len(headers)]:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    head += nodes.row("", *(_cell(h) for h in headers))
    body = nodes.tbody()
    for row in rows:
        body += nodes.row("", *(_cell(c) for c in row))
    group += head
    group += body
    return [table]


class DSNParams(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self) -> list[Any]:
        name = self.arguments[0]
        if name == "common":
            rows = [[f"``{p}``", v, d] for p, (v, d) in COMMON.items()]
            return _table(["parameter", "values", "meaning"], rows)
        try:
            scheme = get_scheme(name)
        except StorageDSNError as exc:
            raise self.error(f"dsn-params: {exc}") from None
        documented = PARAMS.get(ALIASES.get(name, name))
        if documented is None:
            raise self.error(f"dsn-params: no descriptions for scheme {name!r} in dsnref.py")
        undocumented = sorted(scheme.params - documented.keys())
        stale = sorted(documented.keys() - scheme.params)
        if undocumented or stale:
            raise self.error(
                f"dsn-params {name}: the code accepts {undocumented or 'nothing more'} "
                f"without a description; described but not accepted: {stale or 'none'}"
            )
        if not hasattr(self.env, "dsnref_documented"):
            self.env.dsnref_documented = set()  # type: ignore[attr-defined]
        seen: set[str] = self.env.dsnref_documented  # type: ignore[attr-defined]
        seen.update(n for n, a in ALIASES.items() if a == name)
        seen.add(name)
        if not documented:
            para = nodes.paragraph(text="No parameters of its own: url, domain and option.* only.")
            return [para]
        rows = [[f"``{p}``", v, d] for p, (v, d) in sorted(documented.items())]
        return _table(["parameter", "values", "meaning"], rows)


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


class DSNExample(SphinxDirective):
    has_content = True

    def run(self) -> list[Any]:
        out = []
        for dsn in (line.strip() for line in self.content):
            if not dsn:
                continue
            try:
                config = parse_dsn(dsn)
            except StorageDSNError as exc:
                raise self.error(f"dsn-example {dsn!r} does not parse: {exc}") from None
            rows = [
                (k, _backend_row(dsn) if k == "backend" else v)
                for k, v in get_scheme(config.scheme).describe(config)
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
            text = scrubber.scrub(f"$ storage-dsn check '{config.redacted()}'\n{text}")
            out.append(_literal(text, "console"))
        return out


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

    base._installed.discard(module)  # forget that it was found, for the directive's run
    try:
        yield
    finally:
        importlib.util.find_spec = real


class DSNError(SphinxDirective):
    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {"missing": lambda arg: arg.strip()}

    def run(self) -> list[Any]:
        out = []
        for dsn in (line.strip() for line in self.content):
            if not dsn:
                continue
            clear_cache()
            try:
                with _without(self.options.get("missing")):
                    open_storage(dsn)
            except StorageDSNError as exc:
                text = f">>> open_storage({dsn!r})\n{type(exc).__name__}: {exc}"
                out.append(_literal(text, "pycon"))
            else:
                raise self.error(f"dsn-error: {dsn!r} opened without an error")
        return out


def _check_all_documented(app: Sphinx, env: Any) -> None:
    seen = getattr(env, "dsnref_documented", set())
    builtin = {scheme.name for scheme in BUILTIN}
    missing = sorted((builtin & set(schemes)) - seen)
    if missing:
        from sphinx.util import logging

        logging.getLogger(__name__).warning(
            "dsnref: no dsn-params table for the schemes %s", ", ".join(missing)
        )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("dsn-params", DSNParams)
    app.add_directive("dsn-example", DSNExample)
    app.add_directive("dsn-error", DSNError)
    app.connect("env-check-consistency", _check_all_documented)
    return {"version": "1", "parallel_read_safe": False}
