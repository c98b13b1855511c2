"""DSN strings: splitting, shared parameters, redaction, and the :class:`StorageConfig` value.

String work only: no I/O, no backend import, and no knowledge of any scheme.
:func:`split_dsn` splits a DSN, handles the parameters every scheme shares (``url``,
``domain``, ``option.NAME``) and checks the rest against what the scheme accepts; the
scheme's parser turns the resulting :class:`DSNParts` into a :class:`StorageConfig`.
:func:`storage_dsn.parse_dsn` (in :mod:`storage_dsn.registry`) joins the two.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .errors import InvalidDSNError, StorageDSNError
from .redaction import Secret

__all__ = [
    "MAX_URL_EXPIRES",
    "DSNParts",
    "StorageConfig",
    "cache_control_param",
    "expires_param",
    "flag",
    "json_secrets",
    "redact_dsn",
    "scheme_of",
    "secret_values",
    "split_dsn",
    "timeout_settings",
    "with_param",
]

#: Parameters every scheme accepts.
COMMON_PARAMS = frozenset({"url", "domain"})
#: Parameters every remote scheme accepts: how long to wait, and how often to try again.
TIMEOUT_PARAMS = frozenset({"connect_timeout", "read_timeout", "retries"})
OPTION_PREFIX = "option."
DEFAULT_URL_EXPIRES = 3600
#: The longest a signed URL may live: seven days, the limit of SigV4 and of GCS V4 URLs
#: (Azure sets none; a SAS from the account key is revocable only by rotating the key).
MAX_URL_EXPIRES = 7 * 24 * 3600

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Option and parameter names whose values are secrets, masked by ``redacted()``.
_SECRET_NAME = re.compile(
    r"secret|passw|passphrase|token|credential|sas|signature|sig$|account_key|private|^key$",
    re.IGNORECASE,
)
_MASK = "***"
# A header value: printable ASCII, bounded.
_CACHE_CONTROL = re.compile(r"[ -~]{1,1024}")
# Secrets inside a value, whatever its name: an Azure connection string's ``AccountKey=``
# and ``SharedAccessSignature=`` fields (to the next ``;``), a SAS token's ``sig=`` (to the
# next ``&`` or ``;``). Each starts the value or follows a separator.
_EMBEDDED_SECRET = re.compile(
    r"(?<![^;&?])(?:(accountkey|sharedaccesssignature)=[^;]*|(sig)=[^;&]*)", re.IGNORECASE
)


@dataclass(frozen=True, repr=False)
class StorageConfig:
    """A parsed DSN: which fsspec filesystem, rooted where, with what public URLs.

    Immutable and hashable; two DSNs that mean the same storage give equal configs.
    ``str()`` and ``repr()`` mask every secret; :meth:`to_dsn` does not.
    """

    #: The DSN scheme as written (``s3``, ``s3+http``, ``file``, ...).
    scheme: str
    #: The fsspec protocol it maps to (``s3``, ``file``, ``memory``, ``gcs``, ...).
    protocol: str
    #: Where the storage lives inside the backend: ``bucket/prefix`` or an absolute path.
    root: str
    #: The fsspec storage options, read-only; see :meth:`storage_options` for a copy.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Base URL that maps to ``root`` (``https://...`` or a path like ``/media/``).
    public_url: str | None = None
    #: ``True`` when :meth:`Storage.url` presigns (a private bucket).
    signed_urls: bool = False
    #: Seconds a presigned URL lives.
    url_expires: int = DEFAULT_URL_EXPIRES
    #: The scheme's own settings, read-only: what the DSN says that is not an fsspec
    #: storage option (S3's ``engine``, ...). They never reach the filesystem class.
    settings: Mapping[str, Any] = field(default_factory=dict)
    # The DSN this config was parsed from: the source of to_dsn() and redacted(). Not part
    # of equality, so spellings of the same storage compare (and cache) equal.
    _dsn: str = field(default="", compare=False)
    # The config's value when parse_dsn made it from _dsn: to_dsn() trusts _dsn only while
    # the config still has that value (dataclasses.replace copies _dsn along).
    _parsed: tuple[Any, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _freeze(self.options))
        object.__setattr__(self, "settings", _freeze(self.settings))

    def __hash__(self) -> int:
        return hash(self._value())

    def _value(self) -> tuple[Any, ...]:
        return (
            self.scheme,
            self.protocol,
            self.root,
            _hashable(self.options),
            self.public_url,
            self.signed_urls,
            self.url_expires,
            _hashable(self.settings),
        )

    def parsed_from(self, dsn: str) -> StorageConfig:
        """This config, recorded as parsed from ``dsn`` (what :meth:`to_dsn` returns)."""
        return replace(self, _dsn=dsn, _parsed=self._value())

    def storage_options(self) -> dict[str, Any]:
        """A mutable deep copy of :attr:`options`, ready for ``fsspec.filesystem()``."""
        thawed = _thaw(self.options)
        assert isinstance(thawed, dict)
        return thawed

    def to_dsn(self) -> str:
        """A DSN that parses back to an equal config, secrets included (not for logs)."""
        if self._dsn and self._parsed == self._value():
            return self._dsn
        raise StorageDSNError(
            "this StorageConfig was not made by parse_dsn (or was changed since), so it has "
            "no DSN; build configs with parse_dsn()"
        )

    def redacted(self) -> str:
        """The DSN with every secret replaced by ``***``: safe to print and log."""
        if not self._dsn:
            return f"{self.scheme}:{self.root}"
        return redact_dsn(self._dsn)

    def __str__(self) -> str:
        return self.redacted()

    def __repr__(self) -> str:
        return f"StorageConfig({self.redacted()!r})"


@dataclass(frozen=True)
class DSNParts:
    """A split DSN, as a scheme parser receives it.

    Credentials and path are percent-decoded. ``params`` holds the scheme's own query
    parameters (the shared ``url``, ``domain`` and ``option.*`` are handled for it).
    """

    scheme: str
    username: str | None
    password: str | None
    #: Host name, lowercased, IPv6 without brackets; ``""`` when the DSN has none.
    host: str
    port: int | None
    #: ``host[:port]`` as written (IPv6 bracketed), for building endpoint URLs.
    netloc_host: str
    path: str
    params: Mapping[str, str]
    options: Mapping[str, Any]
    url: str | None
    domain: str | None
    dsn: str = field(repr=False)

    def public_base(self, prefix: str) -> str | None:
        """The public base URL from ``url=`` or ``domain=``, or ``None`` for neither.

        ``prefix`` is the key prefix inside the backend (for ``domain=``, the URL path).
        """
        if self.url is not None:
            return self.url
        if self.domain is not None:
            path = quote(prefix.strip("/"), safe="/")
            return f"https://{self.domain}/{path}/" if path else f"https://{self.domain}/"
        return None

    def config(
        self,
        *,
        protocol: str,
        root: str,
        options: Mapping[str, Any] | None = None,
        public_url: str | None = None,
        signed_urls: bool = False,
        url_expires: int = DEFAULT_URL_EXPIRES,
        settings: Mapping[str, Any] | None = None,
    ) -> StorageConfig:
        """Build the :class:`StorageConfig`; ``option.*`` parameters override ``options``."""
        merged = dict(options or {})
        merged.update(self.options)
        return StorageConfig(
            scheme=self.scheme,
            protocol=protocol,
            root=root,
            options=merged,
            public_url=public_url,
            signed_urls=signed_urls,
            url_expires=url_expires,
            settings=settings or {},
            _dsn=self.dsn,
        )


def split_dsn(dsn: str, scheme: str, accepted: frozenset[str]) -> DSNParts:
    """Split ``dsn`` into :class:`DSNParts`, checking its parameters against ``accepted``."""
    text = dsn.strip()
    if _has_control(text):
        raise InvalidDSNError("a DSN must not contain control characters or line breaks")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidDSNError("a DSN must be valid Unicode (it has a lone surrogate)") from None
    if "#" in text:
        raise InvalidDSNError(
            "a DSN must not contain '#'; percent-encode it as %23 (in a secret too)"
        )
    try:
        split = urlsplit(text)
        port = split.port
    except ValueError:
        raise InvalidDSNError(
            "the DSN's host part is malformed (bad port or brackets); if a secret contains "
            "'/', '?', '#' or '@', percent-encode it (%2F, %3F, %23, %40)"
        ) from None
    if "@" in split.path or "@" in split.query:
        # An unencoded '/' in a password ends the authority early ("user:12/34@host"
        # reads as host "user", port 12): refuse rather than guess, and never echo it.
        raise InvalidDSNError(
            "the DSN has '@' after the host; if a secret contains '/', '?', '#' or '@', "
            "percent-encode it (%2F, %3F, %23, %40), and write '@' elsewhere as %40"
        )
    if split.password is not None and split.username is None:
        raise InvalidDSNError("the DSN has a password without a user name")
    params, options, url, domain = _split_query(split.query, scheme, accepted)
    netloc_host = split.netloc.rpartition("@")[2]
    return DSNParts(
        scheme=scheme,
        username=_decode(split.username),
        password=_decode(split.password),
        host=split.hostname or "",
        port=port,
        netloc_host=netloc_host,
        path=_decode(split.path) or "",
        params=MappingProxyType(params),
        options=MappingProxyType(options),
        url=url,
        domain=domain,
        dsn=dsn,
    )


def redact_dsn(dsn: str) -> str:
    """``dsn`` with its password and secret-bearing parameters replaced by ``***``.

    The password ends at the last ``@``: a secret pasted without percent-encoding its
    ``/``, ``?`` or ``#`` (which :func:`split_dsn` refuses) is masked whole as well.
    """
    scheme, colon, rest = dsn.partition(":")
    if rest.startswith("//") and "@" in rest:
        userinfo, _, rest = rest[2:].rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        if any(c in user for c in "/?#"):  # no user name could hold these: all masked
            user, has_password = _MASK, ""
        prefix = f"//{user}:{_MASK}@" if has_password else f"//{user}@"
    else:
        prefix = ""
    head, sep, query = rest.partition("?")
    if sep:
        query = "&".join(_redact_param(item) for item in query.split("&"))
    return f"{scheme}{colon}{prefix}{head}{sep}{query}"


def secret_values(config: StorageConfig) -> list[str]:
    """Every secret ``config`` holds, as written and decoded: for output scrubbers.

    A secret that is a JSON object (a service-account key given inline) adds its own
    secret fields (``private_key``, ``private_key_id``, ``client_secret``, ...), which
    travel on their own, escaped and encoded, once a library has parsed it.
    """
    found = [str(v) for k, v in config.options.items() if _SECRET_NAME.search(k) and v]
    for value in list(found):
        found += json_secrets(value)
    for text in _strings(config.options):
        found += [v for value in _embedded_secrets(text) for v in (value, unquote(value))]
    password = None
    if config._dsn:
        try:
            password = urlsplit(config._dsn).password
        except ValueError:
            password = None
    if password:
        found += [password, unquote(password)]
    return found


def json_secrets(text: str) -> list[str]:
    """The values of the secret fields of ``text`` when it is a JSON object (a
    credentials file's content), else nothing."""
    if not text.lstrip().startswith("{"):
        return []
    import json

    try:
        parsed = json.loads(text)
    except ValueError:
        return []
    if not isinstance(parsed, dict):
        return []
    return [
        value
        for name, value in parsed.items()
        if isinstance(value, str)
        and value
        and _SECRET_NAME.search(str(name))
        and not str(name).endswith(("_uri", "_url"))  # token_uri: where, not what
    ]


def with_param(dsn: str, name: str, value: str) -> str:
    """``dsn`` with the query parameter ``name=value`` appended (both percent-encoded)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}{quote(name, safe='.')}={quote(value, safe='')}"


def timeout_settings(params: Mapping[str, str]) -> dict[str, float | int]:
    """The :data:`TIMEOUT_PARAMS` given in ``params``, checked: seconds (up to an hour) and
    a retry count (up to 20). The backend applies its defaults for the others."""
    found: dict[str, float | int] = {}
    for name in ("connect_timeout", "read_timeout"):
        raw = params.get(name)
        if raw is None:
            continue
        try:
            seconds = float(raw)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 3600:
            raise InvalidDSNError(
                f"the {name!r} parameter must be seconds, above 0 and at most 3600"
            )
        found[name] = seconds
    raw = params.get("retries")
    if raw is not None:
        if not raw.isdigit() or int(raw) > 20:
            raise InvalidDSNError("the 'retries' parameter must be a whole number from 0 to 20")
        found["retries"] = int(raw)
    return found


def expires_param(params: Mapping[str, str]) -> int:
    """The ``expires`` parameter: a signed URL's lifetime, from 1 to :data:`MAX_URL_EXPIRES`
    seconds (default :data:`DEFAULT_URL_EXPIRES`)."""
    raw = params.get("expires", str(DEFAULT_URL_EXPIRES))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_URL_EXPIRES:
        raise InvalidDSNError(
            f"the 'expires' parameter must be seconds from 1 to {MAX_URL_EXPIRES}"
        )
    return int(raw)


def cache_control_param(params: Mapping[str, str]) -> str | None:
    """The ``cache_control`` parameter (an upload setting of every cloud scheme), checked:
    it travels as a request header, so printable ASCII only; ``None`` when not given."""
    value = params.get("cache_control")
    if value is not None and not _CACHE_CONTROL.fullmatch(value):
        raise InvalidDSNError(
            "the 'cache_control' parameter must be a Cache-Control header value "
            "(printable ASCII), percent-encoded"
        )
    return value


def flag(params: Mapping[str, str], name: str, default: bool = False) -> bool:
    """The boolean query parameter ``name`` (``true`` or ``false``)."""
    value = params.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise InvalidDSNError(f"the {name!r} parameter must be 'true' or 'false'")
    return value == "true"


def _redact_param(item: str) -> str:
    name, eq, value = item.partition("=")
    bare = unquote(name).removeprefix(OPTION_PREFIX)
    if eq and value and _SECRET_NAME.search(bare):
        return f"{name}={_MASK}"
    decoded = unquote(value)
    if _EMBEDDED_SECRET.search(decoded):  # a connection string: keep all but its secrets
        return f"{name}={quote(_EMBEDDED_SECRET.sub(_mask_field, decoded), safe='=;:/*')}"
    return item


def _embedded_secrets(text: str) -> list[str]:
    """The secret fields' values in ``text``, and the ``sig`` inside a SAS among them."""
    found = []
    for match in _EMBEDDED_SECRET.finditer(text):
        value = match.group(0).partition("=")[2]
        if value:
            found += [value, *_embedded_secrets(value)]
    return found


def _mask_field(match: re.Match[str]) -> str:
    return f"{match.group(1) or match.group(2)}={_MASK}"


def _strings(value: Any) -> list[str]:
    """The strings in ``value``, a (frozen) options mapping, at any depth."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, tuple):
        return [s for v in value for s in _strings(v)]
    return []


def scheme_of(dsn: str) -> str:
    """The scheme of ``dsn``, lowercase; :class:`InvalidDSNError` when it has none."""
    text = dsn.strip()
    if text[:1] in ("'", '"') or text[-1:] in ("'", '"'):
        raise InvalidDSNError(
            "the DSN is in quotes: remove them (quotes from a .env file or a shell are not "
            "part of the value)"
        )
    match = _SCHEME_RE.match(text)
    if not match:
        raise InvalidDSNError("a DSN must start with a scheme, like 's3://...' or 'file:///path/'")
    return match.group(1).lower()


def _split_query(
    query: str, scheme: str, accepted: frozenset[str]
) -> tuple[dict[str, str], dict[str, Any], str | None, str | None]:
    params: dict[str, str] = {}
    options: dict[str, Any] = {}
    seen: set[str] = set()
    for item in query.split("&") if query else ():
        if not item:
            continue
        raw_name, _, raw_value = item.partition("=")
        name = unquote(raw_name)
        if name in seen:
            raise InvalidDSNError(f"the DSN parameter {name!r} is given twice")
        seen.add(name)
        value = unquote(raw_value)
        if name.startswith(OPTION_PREFIX) and len(name) > len(OPTION_PREFIX):
            options[name[len(OPTION_PREFIX) :]] = _convert(value)
        elif name in COMMON_PARAMS or name in accepted:
            params[name] = value
        else:
            names = sorted(COMMON_PARAMS | accepted | {"option.NAME"})
            raise InvalidDSNError(
                f"unknown DSN parameter {name!r} for the {scheme!r} scheme; "
                f"accepted: {', '.join(names)}"
            )
    url = params.pop("url", None)
    domain = params.pop("domain", None)
    if url is not None:
        url = _check_public_url(url)
    if domain is not None:
        domain = _check_domain(domain)
    if url is not None and domain is not None:
        raise InvalidDSNError("give either 'url' or 'domain', not both")
    return params, options, url, domain


def _check_public_url(url: str) -> str:
    lowered = url.lower()
    if lowered.startswith(("https://", "http://")):
        try:
            host = urlsplit(url).netloc
        except ValueError:  # "Invalid IPv6 URL": an unbalanced bracket
            raise InvalidDSNError("the 'url' parameter's host is malformed") from None
        if not host or "@" in host:
            raise InvalidDSNError(
                "the 'url' parameter must be an http(s) URL with a host and no credentials"
            )
    elif not url.startswith("/") or url.startswith("//"):
        raise InvalidDSNError(
            "the 'url' parameter must be an absolute http(s) URL or a path starting with a "
            "single '/', percent-encoded: url=%2Fmedia%2F or url=https%3A%2F%2Fcdn.example.org%2F"
        )
    if any(c.isspace() for c in url) or "?" in url or "#" in url:
        raise InvalidDSNError("the 'url' parameter must not contain spaces, '?' or '#'")
    return url if url.endswith("/") else url + "/"


def _check_domain(domain: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?", domain):
        raise InvalidDSNError(
            "the 'domain' parameter must be a host name like cdn.example.com, with no "
            "scheme or path"
        )
    return domain.lower()


def _convert(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?\d{1,18}", value):
        return int(value)
    return value


def _decode(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise InvalidDSNError(
            "the DSN has a percent-encoded sequence that is not valid UTF-8"
        ) from None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


_SCALARS = (str, int, float, bool, bytes, type(None))


def _freeze(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(_guard(str(k), v)) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if value is None or isinstance(value, (str, int, float, bytes)):
        return value
    import copy

    return copy.deepcopy(value)


def _guard(name: str, value: Any) -> Any:
    """A secret option's value as a :class:`~storage_dsn.redaction.Secret`, whose repr is
    ``'***'``: a config's options, a variable holding one, never show it."""
    if type(value) is str and (_SECRET_NAME.search(name) or _EMBEDDED_SECRET.search(value)):
        return Secret(value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Secret):  # plain again: fsspec tells filesystems apart by repr
        return str(value)
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bytes)):
        return value
    import copy

    return copy.deepcopy(value)


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, tuple):
        return tuple(_hashable(v) for v in value)
    return value
