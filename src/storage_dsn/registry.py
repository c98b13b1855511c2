"""The scheme registry: which DSN schemes exist and how each is parsed and opened.

Built-in schemes register through the same :func:`register_scheme` as third parties.
A package can also add schemes without being imported first, through the entry-point
group ``storage_dsn.schemes``: each entry point's name is the scheme and its object a
:class:`Scheme`. Entry points are loaded the first time an unknown scheme is asked for.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING

from .errors import MissingBackendError, StorageDSNError, UnknownSchemeError

if TYPE_CHECKING:
    from .dsn import DSNParts, StorageConfig
    from .schemes.base import Backend

__all__ = ["ENTRY_POINT_GROUP", "Scheme", "get_scheme", "register_scheme", "schemes"]

ENTRY_POINT_GROUP = "storage_dsn.schemes"

Parser = Callable[["DSNParts"], "StorageConfig"]
BackendFactory = Callable[["StorageConfig"], "Backend"]


@dataclass(frozen=True)
class Scheme:
    """How one DSN scheme is parsed and opened."""

    #: The scheme name, lowercase (``s3``, ``file``).
    name: str
    #: Turns the split DSN into a config.
    parse: Parser
    #: Query parameters the scheme accepts beyond ``url``, ``domain`` and ``option.*``.
    params: frozenset[str] = frozenset()
    #: The ``storage-dsn`` extra that installs the backend, named in errors.
    extra: str | None = None
    #: Modules that must be importable to open a storage (checked, not imported).
    requires: tuple[str, ...] = ()
    #: Builds the backend for a config; ``None`` means the generic fsspec backend.
    backend: BackendFactory | None = field(default=None, compare=False)
    #: For schemes whose needs depend on the DSN (an S3 ``engine``): (module, extra) pairs.
    requires_for: Callable[[StorageConfig], Iterable[tuple[str, str | None]]] | None = field(
        default=None, compare=False
    )

    def check_installed(self, config: StorageConfig | None = None) -> None:
        """Raise :class:`MissingBackendError` when a required module is missing."""
        if config is not None and self.requires_for is not None:
            needed = list(self.requires_for(config))
        else:
            needed = [(module, self.extra) for module in self.requires]
        for module, extra in needed:
            if module in _installed:
                continue
            if importlib.util.find_spec(module) is None:
                raise MissingBackendError(self.name, module, extra)
            _installed.add(module)  # only positives: an install mid-run is then seen


_SCHEMES: dict[str, Scheme] = {}
_installed: set[str] = set()
#: Read-only view of the registered schemes, by name.
schemes: Mapping[str, Scheme] = MappingProxyType(_SCHEMES)
_lock = threading.Lock()
_entry_points_loaded = False


def register_scheme(
    name: str,
    parse: Parser,
    *,
    params: Iterable[str] = (),
    extra: str | None = None,
    requires: Iterable[str] = (),
    backend: BackendFactory | None = None,
    requires_for: Callable[[StorageConfig], Iterable[tuple[str, str | None]]] | None = None,
    clobber: bool = False,
) -> Scheme:
    """Register a DSN scheme and return its :class:`Scheme`.

    ``parse`` receives a :class:`~storage_dsn.dsn.DSNParts` and returns a
    :class:`~storage_dsn.StorageConfig` (``parts.config(...)`` builds one). A scheme that is
    already registered is refused unless ``clobber=True``.
    """
    scheme = Scheme(
        name=name.lower(),
        parse=parse,
        params=frozenset(params),
        extra=extra,
        requires=tuple(requires),
        backend=backend,
        requires_for=requires_for,
    )
    _add(scheme, clobber=clobber)
    return scheme


def get_scheme(name: str) -> Scheme:
    """The registered :class:`Scheme` called ``name``, loading entry points if needed."""
    key = name.lower()
    scheme = _SCHEMES.get(key)
    if scheme is None and not _entry_points_loaded:
        _load_entry_points()
        scheme = _SCHEMES.get(key)
    if scheme is None:
        raise UnknownSchemeError(name, _SCHEMES)
    return scheme


def _add(scheme: Scheme, *, clobber: bool) -> None:
    if not scheme.name or ":" in scheme.name or "/" in scheme.name:
        raise StorageDSNError(f"{scheme.name!r} is not a valid scheme name")
    with _lock:
        if scheme.name in _SCHEMES and not clobber:
            raise StorageDSNError(
                f"the scheme {scheme.name!r} is already registered; pass clobber=True to replace it"
            )
        _SCHEMES[scheme.name] = scheme


def _load_entry_points() -> None:
    global _entry_points_loaded
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() in _SCHEMES:
            continue  # an explicit registration wins over a plugin's
        scheme = ep.load()
        if not isinstance(scheme, Scheme):
            raise StorageDSNError(
                f"entry point {ep.name!r} in {ENTRY_POINT_GROUP!r} must be a storage_dsn Scheme"
            )
        _add(Scheme(**{**scheme.__dict__, "name": ep.name.lower()}), clobber=False)
    _entry_points_loaded = True


def _reset() -> None:
    """Restore the built-in schemes only (for tests)."""
    global _entry_points_loaded
    from .schemes import register_builtins

    with _lock:
        _SCHEMES.clear()
    _entry_points_loaded = False
    register_builtins()
