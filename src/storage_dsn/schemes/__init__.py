"""The built-in schemes, one module (S3: one package) per backend family.

Each module holds everything about its backend (DSN grammar, backend, URLs, how ``check``
describes it) and exports its :class:`~storage_dsn.schemes.base.Scheme` values as
``SCHEMES``. :data:`MODULES` names the module of every built-in scheme; the registry
imports one the first time one of its schemes is asked for, so a command that opens an S3
storage never imports the Azure, GCS or SFTP modules. Importing a scheme module imports
no backend either: it parses DSNs with the standard library and imports its fsspec
implementation only when a storage is first used.
"""

from __future__ import annotations

from importlib import import_module

from .base import Scheme

__all__ = ["BUILTIN", "MODULES", "Scheme", "builtin_schemes"]

#: Every built-in scheme's name and the module (relative to this package) that defines
#: it, in the order they are registered.
MODULES: dict[str, str] = {
    "file": ".local",
    "memory": ".memory",
    "s3": ".s3",
    "s3+http": ".s3",
    "gs": ".gcs",
    "gcs": ".gcs",
    "gs+http": ".gcs",
    "az": ".azure",
    "abfs": ".azure",
    "az+http": ".azure",
    "sftp": ".sftp",
}


def builtin_schemes(module: str) -> tuple[Scheme, ...]:
    """The schemes one built-in ``module`` (a value of :data:`MODULES`) defines."""
    schemes: tuple[Scheme, ...] = import_module(module, __name__).SCHEMES
    return schemes


def __getattr__(name: str) -> tuple[Scheme, ...]:
    # BUILTIN imports every scheme module, so it is built only when asked for.
    if name == "BUILTIN":
        modules = dict.fromkeys(MODULES.values())
        return tuple(scheme for module in modules for scheme in builtin_schemes(module))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
