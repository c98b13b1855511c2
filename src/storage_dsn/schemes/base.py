"""What a scheme is: how one DSN scheme is parsed, opened, described and given URLs.

A :class:`Scheme` is plain data: a name, a parser, the parameters it accepts, the packages
it needs, and hooks with defaults. Everything the rest of the package needs to know about
a backend it asks the scheme (or the backend the scheme builds), never by comparing a
protocol name. The registry (:mod:`storage_dsn.registry`) maps names to these values.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..backend import Backend
from ..dsn import DSNParts, StorageConfig
from ..errors import MissingBackendError
from ..urls import Clock, Resolver, Urls, as_urls, public_resolver
from .generic import FsspecBackend

__all__ = ["BackendFactory", "Details", "Parser", "Requirements", "Scheme", "UrlFactory"]

#: Turns a split DSN into a config.
Parser = Callable[[DSNParts], StorageConfig]
#: Builds the backend for a config: ``factory(config, environ=environ)``; a
#: :class:`~storage_dsn.backend.Backend` subclass is one.
BackendFactory = Callable[..., Backend]
#: Builds the URL maker for a config: ``factory(config, environ, clock)``; a plain
#: ``resolver(key, expires)`` is accepted too (it makes read URLs only).
UrlFactory = Callable[[StorageConfig, Mapping[str, str], Clock], "Urls | Resolver"]
#: The ``(module, extra)`` pairs a config needs, for schemes whose needs depend on it.
Requirements = Callable[[StorageConfig], Iterable[tuple[str, "str | None"]]]
#: Extra rows for ``storage-dsn check``.
Details = Callable[[StorageConfig], Iterable[tuple[str, str]]]

# Modules found importable; only positives are kept, so an install mid-run is then seen.
_installed: set[str] = set()


@dataclass(frozen=True)
class Scheme:
    """How one DSN scheme is parsed, opened, described and given URLs."""

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
    requires_for: Requirements | None = field(default=None, compare=False)
    #: Builds the URL resolver; ``None``: the public base URL (``url=``, ``domain=`` or the
    #: parser's default) plus the quoted key, and :class:`NoPublicURLError` without one.
    urls: UrlFactory | None = field(default=None, compare=False)
    #: Extra ``(name, value)`` rows for ``storage-dsn check`` (S3: bucket, region, ...).
    details: Details | None = field(default=None, compare=False)
    #: A DSN for the same objects through the engine that suits bulk transfers, or
    #: ``None`` when the config's own engine is the one (see ``Storage.for_transfer``).
    transfer_dsn: Callable[[StorageConfig], str | None] | None = field(default=None, compare=False)

    def requirements(self, config: StorageConfig | None = None) -> list[tuple[str, str | None]]:
        """The ``(module, extra)`` pairs a storage of this scheme needs."""
        if config is not None and self.requires_for is not None:
            return list(self.requires_for(config))
        return [(module, self.extra) for module in self.requires]

    def check_installed(self, config: StorageConfig | None = None) -> None:
        """Raise :class:`MissingBackendError` when a required module is missing."""
        for module, extra in self.requirements(config):
            if module in _installed:
                continue
            if importlib.util.find_spec(module) is None:
                raise MissingBackendError(self.name, module, extra)
            _installed.add(module)

    def open_backend(
        self, config: StorageConfig, *, environ: Mapping[str, str] = os.environ
    ) -> Backend:
        """The backend for ``config`` (no I/O yet); :class:`MissingBackendError` first."""
        self.check_installed(config)
        factory = self.backend or FsspecBackend
        return factory(config, environ=environ)

    def resolver(
        self,
        config: StorageConfig,
        *,
        environ: Mapping[str, str] = os.environ,
        clock: Clock = time.time,
    ) -> Urls:
        """The :class:`~storage_dsn.urls.Urls` for ``config``: string work per call."""
        if self.urls is None:
            return public_resolver(config)
        return as_urls(self.urls(config, environ, clock))

    def describe(self, config: StorageConfig) -> list[tuple[str, str]]:
        """``(name, value)`` rows saying what ``config`` means, secrets masked."""
        needed = self.requirements(config)
        try:
            self.check_installed(config)
            installed = "installed"
        except MissingBackendError as exc:
            hint = f'"storage-dsn[{exc.extra}]"' if exc.extra else exc.module
            installed = f"not installed: pip install {hint}"
        backend = ", ".join(module for module, _ in needed) or "fsspec"
        rows = [
            ("DSN", config.redacted()),
            ("scheme", config.scheme),
            ("backend", f"{backend} ({config.protocol}), {installed}"),
            ("root", config.root),
        ]
        if self.details is not None:
            rows += self.details(config)
        rows += [
            ("public URL", config.public_url or "(none: add url= or domain=)"),
            ("signed URLs", f"yes, {config.url_expires} s" if config.signed_urls else "no"),
        ]
        return rows

    def dsn_for_transfer(self, config: StorageConfig) -> str | None:
        """A DSN for bulk transfers of ``config``'s objects, or ``None`` for ``config``'s own."""
        return None if self.transfer_dsn is None else self.transfer_dsn(config)
