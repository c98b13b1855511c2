"""The exceptions raised by storage-dsn.

Every error is a :class:`StorageDSNError`, itself a :class:`ValueError`, so callers that
only care whether a DSN or key was acceptable can catch one class::

    ValueError
    └── StorageDSNError
        ├── InvalidDSNError          the DSN string is malformed or has a bad parameter
        │   └── UnknownSchemeError   no scheme of that name is registered
        ├── MissingBackendError      the scheme's optional dependency is not installed
        ├── InvalidKeyError          a key is empty, absolute, escapes the root, ...
        ├── NoPublicURLError         the storage has no public URL for keys
        └── ConfigurationError       no DSN in the environment and no default

A missing key is not among them: it raises :class:`FileNotFoundError`, as fsspec does.

No message built here contains a password, secret key, token or signature: parse errors
name the part of the DSN that was wrong, never echo the DSN itself.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConfigurationError",
    "InvalidDSNError",
    "InvalidKeyError",
    "MissingBackendError",
    "NoPublicURLError",
    "StorageDSNError",
    "UnknownSchemeError",
]


class StorageDSNError(ValueError):
    """Base class of every error raised by storage-dsn."""


class InvalidDSNError(StorageDSNError):
    """The DSN could not be parsed, or one of its parameters is not accepted."""


class UnknownSchemeError(InvalidDSNError):
    """The DSN's scheme is not registered.

    The message lists the registered schemes.
    """

    def __init__(self, scheme: str, known: Iterable[str]) -> None:
        self.scheme = scheme
        self.known = tuple(sorted(known))
        super().__init__(
            f"unknown storage scheme {scheme!r}; registered schemes: {', '.join(self.known)}"
        )


class MissingBackendError(StorageDSNError):
    """The scheme's backend package is not installed.

    The message names the extra to install, e.g. ``pip install "storage-dsn[s3]"``.
    """

    def __init__(self, scheme: str, module: str, extra: str | None) -> None:
        self.scheme = scheme
        self.module = module
        self.extra = extra
        hint = f'pip install "storage-dsn[{extra}]"' if extra else f"pip install {module}"
        super().__init__(
            f"the {scheme!r} scheme needs the {module!r} package, which is not installed: {hint}"
        )


class InvalidKeyError(StorageDSNError):
    """A key is not a safe relative POSIX path inside the storage's root."""


class NoPublicURLError(StorageDSNError):
    """The storage has no public URL for its keys (add ``url=`` or ``domain=`` to the DSN)."""


class ConfigurationError(StorageDSNError):
    """No DSN was given, none is in the environment, and there is no default."""
