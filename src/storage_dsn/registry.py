"""The scheme registry, and :func:`parse_dsn`, which consults it.

The registry maps scheme names to :class:`~storage_dsn.schemes.base.Scheme` values. A
built-in scheme's module (:data:`storage_dsn.schemes.MODULES`) is imported the first time
one of its names is asked for, so opening an S3 storage imports nothing of Azure's; its
schemes then take the same place as third parties' registrations. A package can also add
schemes without being imported first, through the entry-point group
``storage_dsn.schemes``: each entry point's name is the scheme and its object a
:class:`Scheme`. Entry points are loaded the first time an unknown scheme is asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping

from .dsn import StorageConfig, scheme_of, split_dsn
from .errors import InvalidDSNError, StorageDSNError, UnknownSchemeError
from .redaction import guarded
from .schemes import MODULES, builtin_schemes
from .schemes.base import BackendFactory, Details, Parser, Requirements, Scheme, UrlFactory

__all__ = [
    "ENTRY_POINT_GROUP",
    "Scheme",
    "get_scheme",
    "parse_dsn",
    "register",
    "register_scheme",
    "schemes",
]

ENTRY_POINT_GROUP = "storage_dsn.schemes"

_SCHEMES: dict[str, Scheme] = {}
# The built-in modules (values of MODULES) not imported since the last _reset.
_unloaded: set[str] = set()
_lock = threading.RLock()
_entry_points_loaded = False


class _Registered(Mapping[str, Scheme]):
    """The registered schemes by name, read-only; built-in ones are imported when read."""

    def __getitem__(self, name: str) -> Scheme:
        _load_builtin(name)
        return _SCHEMES[name]

    def __iter__(self) -> Iterator[str]:
        _load_builtins()
        builtin = [name for name in MODULES if name in _SCHEMES]
        return iter(builtin + [name for name in _SCHEMES if name not in MODULES])

    def __len__(self) -> int:
        _load_builtins()
        return len(_SCHEMES)

    def __repr__(self) -> str:
        return f"<registered storage schemes: {', '.join(self)}>"


#: Read-only view of the registered schemes, by name.
schemes: Mapping[str, Scheme] = _Registered()


@guarded
def parse_dsn(dsn: str) -> StorageConfig:
    """Parse a storage DSN into a :class:`StorageConfig`.

    Pure: no I/O and no backend import. Raises :class:`InvalidDSNError` (or its subclass
    :class:`UnknownSchemeError`) for anything it cannot accept; the message says what was
    wrong without echoing the DSN, which may hold secrets.
    """
    if not isinstance(dsn, str):
        raise InvalidDSNError(f"a DSN must be a str, not {type(dsn).__name__}")
    name = scheme_of(dsn)
    scheme = get_scheme(name)
    config = scheme.parse(split_dsn(dsn, name, scheme.params))
    if not isinstance(config, StorageConfig):
        raise InvalidDSNError(f"the {name!r} scheme's parser did not return a config")
    return config.parsed_from(dsn)


def register_scheme(
    name: str,
    parse: Parser,
    *,
    params: Iterable[str] = (),
    extra: str | None = None,
    requires: Iterable[str] = (),
    backend: BackendFactory | None = None,
    requires_for: Requirements | None = None,
    urls: UrlFactory | None = None,
    details: Details | None = None,
    clobber: bool = False,
) -> Scheme:
    """Register a DSN scheme and return its :class:`Scheme`.

    ``parse`` receives a :class:`~storage_dsn.dsn.DSNParts` and returns a
    :class:`~storage_dsn.StorageConfig` (``parts.config(...)`` builds one). The other
    arguments are the :class:`Scheme`'s fields. A scheme that is already registered is
    refused unless ``clobber=True``.
    """
    scheme = Scheme(
        name=name.lower(),
        parse=parse,
        params=frozenset(params),
        extra=extra,
        requires=tuple(requires),
        backend=backend,
        requires_for=requires_for,
        urls=urls,
        details=details,
    )
    register(scheme, clobber=clobber)
    return scheme


def register(scheme: Scheme, *, clobber: bool = False) -> None:
    """Register a :class:`Scheme` value under its name (refused if taken, unless ``clobber``)."""
    if not scheme.name or ":" in scheme.name or "/" in scheme.name:
        raise StorageDSNError(f"{scheme.name!r} is not a valid scheme name")
    with _lock:
        _load_builtin(scheme.name)
        if scheme.name in _SCHEMES and not clobber:
            raise StorageDSNError(
                f"the scheme {scheme.name!r} is already registered; pass clobber=True to replace it"
            )
        _SCHEMES[scheme.name] = scheme


def get_scheme(name: str) -> Scheme:
    """The registered :class:`Scheme` called ``name``, loading entry points if needed."""
    key = name.lower()
    scheme = _SCHEMES.get(key)
    if scheme is None:
        _load_builtin(key)
        scheme = _SCHEMES.get(key)
    if scheme is None and not _entry_points_loaded:
        _load_entry_points()
        scheme = _SCHEMES.get(key)
    if scheme is None:
        raise UnknownSchemeError(name, {*_SCHEMES, *MODULES})
    return scheme


def _load_builtin(name: str) -> None:
    """Import the built-in module that defines ``name``, if not yet imported."""
    module = MODULES.get(name)
    if module is None or module not in _unloaded:
        return
    with _lock:
        if module in _unloaded:
            for scheme in builtin_schemes(module):
                _SCHEMES.setdefault(scheme.name, scheme)  # a registration made first wins
            _unloaded.discard(module)


def _load_builtins() -> None:
    for name in MODULES:
        _load_builtin(name)


def _load_entry_points() -> None:
    # importlib.metadata costs ~40 ms to import: only a DSN whose scheme is not built in
    # (or registered) pays for it.
    from importlib.metadata import entry_points

    global _entry_points_loaded
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() in _SCHEMES or ep.name.lower() in MODULES:
            continue  # a built-in scheme or an explicit registration wins over a plugin's
        scheme = ep.load()
        if not isinstance(scheme, Scheme):
            raise StorageDSNError(
                f"entry point {ep.name!r} in {ENTRY_POINT_GROUP!r} must be a storage_dsn Scheme"
            )
        register(Scheme(**{**scheme.__dict__, "name": ep.name.lower()}))
    _entry_points_loaded = True


def _reset() -> None:
    """Restore the built-in schemes only (for tests)."""
    global _entry_points_loaded
    with _lock:
        _SCHEMES.clear()
        _unloaded.clear()
        _unloaded.update(MODULES.values())
    _entry_points_loaded = False


_reset()
