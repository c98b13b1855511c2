"""The grammar of ``gs:``, ``gcs:`` and ``gs+http:`` DSNs.

* ``gs://BUCKET/PREFIX/?project=P``: Google's endpoint;
* ``endpoint_url=`` (percent-encoded) on ``gs:``/``gcs:``: another endpoint;
* ``gs+http://HOST:PORT/BUCKET/PREFIX/``: an emulator over plain HTTP, anonymous unless
  ``option.token`` says otherwise.

Public URLs default to ``ENDPOINT/BUCKET/PREFIX/KEY``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ...dsn import TIMEOUT_PARAMS, expires_param, flag, timeout_settings
from ...errors import InvalidDSNError
from ...keys import quote_key

if TYPE_CHECKING:
    from ...dsn import DSNParts, StorageConfig

__all__ = ["ANONYMOUS", "GOOGLE_ENDPOINT", "PARAMS", "details", "parse_gcs"]

PARAMS = TIMEOUT_PARAMS | frozenset({"project", "endpoint_url", "qs_auth", "expires"})
#: Where requests go unless the DSN says otherwise; public URLs use the same host.
GOOGLE_ENDPOINT = "https://storage.googleapis.com"
#: gcsfs's ``token`` for sending no credentials at all.
ANONYMOUS = "anon"

# Bucket names: 3-63 characters (up to 222 with dots), lowercase letters, digits, '-',
# '_' and '.', starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_ENDPOINT = re.compile(r"^https?://[^/?#@\s]+/?$")


def parse_gcs(parts: DSNParts) -> StorageConfig:
    """Parse a ``gs:``, ``gcs:`` or ``gs+http:`` DSN."""
    if parts.username is not None:
        raise InvalidDSNError(
            "a GCS DSN is gs://bucket/prefix/; credentials come from the environment or "
            "option.token, not the user part"
        )
    segments = [s for s in parts.path.split("/") if s]
    options: dict[str, Any] = {}
    settings: dict[str, Any] = timeout_settings(parts.params)
    if parts.scheme == "gs+http":
        if not parts.host or not segments:
            raise InvalidDSNError("a gs+http DSN is gs+http://HOST:PORT/bucket/prefix/")
        if "endpoint_url" in parts.params:
            raise InvalidDSNError("a gs+http DSN's endpoint is its host; leave out endpoint_url")
        bucket, segments = segments[0], segments[1:]
        options["endpoint_url"] = f"http://{parts.netloc_host}"
        # An emulator: no credentials unless option.token gives some. A setting, not
        # token=anon among the options, whose every token value is masked as a secret
        # (in the CLI's output too, where "anon" inside any word would become "***").
        settings["anonymous"] = True
    else:
        if parts.port is not None or not parts.host:
            raise InvalidDSNError(
                "a GCS DSN needs a bucket as its host: gs://bucket/prefix/ (an emulator: "
                "gs+http://HOST:PORT/bucket/prefix/)"
            )
        bucket = parts.host
        if "endpoint_url" in parts.params:
            options["endpoint_url"] = _check_endpoint(parts.params["endpoint_url"])
    if not _BUCKET.match(bucket):
        raise InvalidDSNError(
            "a GCS bucket name is 3-63 lowercase letters, digits, '-', '_' or '.', starting "
            "and ending with a letter or digit"
        )
    if "project" in parts.params:
        options["project"] = parts.params["project"]
    prefix = "/".join(segments)
    root = f"{bucket}/{prefix}".rstrip("/")
    # Objects are served at ENDPOINT/BUCKET/KEY by Google's XML API and by fake-gcs-server.
    default_url = f"{options.get('endpoint_url', GOOGLE_ENDPOINT)}/{quote_key(root)}/"
    return parts.config(
        protocol="gcs",
        root=root,
        options=options,
        public_url=parts.public_base(prefix) or default_url,
        signed_urls=flag(parts.params, "qs_auth"),
        url_expires=expires_param(parts.params),
        settings=settings,
    )


def _check_endpoint(url: str) -> str:
    if not _ENDPOINT.match(url):
        raise InvalidDSNError(
            "the 'endpoint_url' parameter must be http(s)://host[:port], percent-encoded"
        )
    return url.rstrip("/")


def details(config: StorageConfig) -> list[tuple[str, str]]:
    """Rows for ``storage-dsn check``: bucket, prefix, endpoint and where credentials come
    from (never their value)."""
    bucket, _, prefix = config.root.partition("/")
    token = config.options.get("token")
    if token == ANONYMOUS or (token is None and config.settings.get("anonymous")):
        credentials = "anonymous"
    elif token is not None:
        credentials = "option.token"
    else:
        credentials = "the environment (Application Default Credentials)"
    return [
        ("bucket", bucket),
        ("prefix", prefix or "(none)"),
        ("endpoint", str(config.options.get("endpoint_url", GOOGLE_ENDPOINT))),
        ("credentials", credentials),
    ]
