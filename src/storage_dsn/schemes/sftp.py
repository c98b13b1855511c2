"""``sftp:`` storages on an SSH server, via sshfs (asyncssh underneath).

``sftp://user[:pass]@host:22/abs/path/?key_file=PATH&known_hosts=PATH``. The server's host
key is checked against ``known_hosts`` (by default ``~/.ssh/known_hosts``); only an
explicit ``known_hosts=none`` turns that off, with a warning in the log.

Writes go to a temporary name beside the key and are renamed over it, so a reader never
sees half a file. A replacing write renames with OpenSSH's ``posix-rename@openssh.com``
extension (POSIX ``rename()``: the key always holds the old or the new file); a write that
must not replace (``save(..., overwrite=False)``) uses the plain SFTP rename, which refuses
an existing target: OpenSSH implements it with ``link()``, so of concurrent creators
exactly one wins. sshfs's own ``mv`` always replaces, and where the extension is missing
it copies with ``cp`` in a remote shell (which SFTP-only accounts do not have), so the
renames here talk to asyncssh's SFTP client directly.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

from ..backend import Timeouts, temp_name
from ..dsn import TIMEOUT_PARAMS, timeout_settings
from ..errors import InvalidDSNError
from .base import Scheme
from .generic import RenamingBackend

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from ..dsn import DSNParts, StorageConfig

__all__ = ["PARAMS", "SCHEMES", "HostKeyError", "SFTPBackend", "details", "parse_sftp"]

log = logging.getLogger(__name__)

PARAMS = TIMEOUT_PARAMS | frozenset({"key_file", "known_hosts"})
#: Where host keys are looked up unless the DSN says ``known_hosts=``.
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


class HostKeyError(ConnectionError):
    """The SSH server's host key is not in ``known_hosts``, or is not the one there.

    Raised on a storage's first I/O; the message names the host and the file, and says how
    to add the key.
    """


def parse_sftp(parts: DSNParts) -> StorageConfig:
    """Parse an ``sftp:`` DSN."""
    if not parts.host:
        raise InvalidDSNError("an SFTP DSN needs a host: sftp://user:pass@host:22/abs/path/")
    options: dict[str, Any] = {"host": parts.host, "port": parts.port or 22}
    if parts.username:
        options["username"] = parts.username
    if parts.password:
        options["password"] = parts.password
    key_file = parts.params.get("key_file")
    if key_file is not None:
        options["client_keys"] = [_path_param("key_file", key_file)]
    known_hosts = parts.params.get("known_hosts")
    if known_hosts == "none":
        options["known_hosts"] = None
    elif known_hosts is not None:
        options["known_hosts"] = _path_param("known_hosts", known_hosts)
    root = "/" + "/".join(s for s in parts.path.split("/") if s)
    return parts.config(
        protocol="sftp",
        root=root,
        options=options,
        public_url=parts.public_base(""),
        settings=timeout_settings(parts.params),
    )


def _path_param(name: str, value: str) -> str:
    if not value.startswith(("/", "~")):
        raise InvalidDSNError(
            f"the {name!r} parameter must be an absolute path (or start with ~/), "
            f"percent-encoded: {name}=%2Fetc%2Fmedia%2F{name}"
        )
    return value


def details(config: StorageConfig) -> list[tuple[str, str]]:
    """Rows for ``storage-dsn check``: where it logs in, how, and how the host is checked."""
    options = config.options
    keys = options.get("client_keys")
    if keys:
        login = f"key file {keys[0]}" + (" or password" if options.get("password") else "")
    elif options.get("password"):
        login = "password"
    else:
        login = "the SSH agent and ~/.ssh/id_* keys"
    known = options.get("known_hosts", DEFAULT_KNOWN_HOSTS)
    checked = f"checked against {known}" if known else "NOT CHECKED (known_hosts=none)"
    return [
        ("host", f"{options['host']}:{options['port']}"),
        ("user", str(options.get("username") or "(the local user name)")),
        ("login", login),
        ("host key", checked),
    ]


class SFTPBackend(RenamingBackend):
    """sshfs, with each write uploaded to a temporary name and renamed over the key."""

    _pid = 0

    @property
    def base(self) -> AbstractFileSystem:
        fs: Any = self._base
        if fs is not None and (self._pid != os.getpid() or fs.client.is_closed()):
            # The server closed the connection (a restart, an idle timeout), or this is a
            # forked worker whose parent owns it: connect again rather than fail forever.
            self._base = self._rooted = None
        return super().base

    def storage_options(self) -> dict[str, Any]:
        options = super().storage_options()
        home = self.environ.get("HOME")
        known = options.setdefault("known_hosts", DEFAULT_KNOWN_HOSTS)
        if isinstance(known, str):
            options["known_hosts"] = _expand(known, home)
        if options.get("client_keys"):
            options["client_keys"] = [_expand(str(k), home) for k in options["client_keys"]]
        # asyncssh's connect_timeout bounds the TCP connection, the SSH handshake and the
        # login together. It has no read timeout: a keepalive sent after read_timeout / 2
        # seconds of silence, unanswered for as long again, drops the connection, and
        # every request waiting on it fails.
        timeouts = Timeouts.of(self.config)
        options.setdefault("connect_timeout", timeouts.connect)
        options.setdefault("keepalive_interval", timeouts.read / 2)
        options.setdefault("keepalive_count_max", 1)
        return options

    def _make_filesystem(self) -> AbstractFileSystem:
        # Built directly, not by fsspec.filesystem("sftp"): that name is paramiko's
        # filesystem unless sshfs's entry point wins, and fsspec's shared
        # ``use_listings_cache`` option would go on to asyncssh.connect(), which refuses
        # unknown keywords (sshfs keeps no listings cache anyway).
        from sshfs import SSHFileSystem

        options = self.storage_options()
        where = f"{options['host']}:{options['port']}"
        _check_files(where, options)
        if options["known_hosts"] is None:
            log.warning(
                "sftp: the host key of %s is not checked (known_hosts=none): whoever can "
                "intercept the connection can read and change the files",
                where,
            )
        retries = Timeouts.of(self.config).retries
        for attempt in range(retries + 1):
            try:
                # A connection of its own, not fsspec's shared instance: a dropped one is
                # replaced here, and the cache would hand the dead one back.
                fs: AbstractFileSystem = SSHFileSystem(**options, skip_instance_cache=True)
                break
            except Exception as exc:
                if attempt == retries or not _transient(exc):
                    raise _connect_error(where, options, exc) from None
            # asyncssh has no retries of its own: back off 1, 2, 4 ... (at most 8) seconds,
            # jittered, as the HTTP clients do.
            time.sleep(min(2**attempt, 8) * random.uniform(0.5, 1.0))
        self._pid = os.getpid()
        return fs

    def translate_error(self, exc: Exception, key: str) -> Exception:
        if _silent(exc):
            return _silent_error(key)
        return super().translate_error(exc, key)

    def _put_bytes(self, path: str, data: bytes, *, exclusive: bool = False) -> None:
        self._sync(self._upload, path, exclusive, data=data)

    def _put_file(self, local: str, path: str, *, exclusive: bool = False) -> None:
        self._sync(self._upload, path, exclusive, local=local)

    async def _put_bytes_async(self, path: str, data: bytes) -> None:
        await self._upload(path, False, data=data)

    def _sync(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the coroutine function on the filesystem's event loop (connecting first)."""
        from fsspec.asyn import sync

        fs: Any = self.base
        return sync(fs.loop, func, *args, **kwargs)

    async def _upload(
        self, path: str, exclusive: bool, *, data: bytes | None = None, local: str | None = None
    ) -> None:
        """Write ``data`` or the file ``local`` to a temporary name, then rename it to
        ``path``: replacing what is there, or (``exclusive``) only if nothing is."""
        directory = posixpath.dirname(path) or "/"
        temp = posixpath.join(directory, temp_name())
        async with self._channel(path) as sftp:
            try:
                await _write(sftp, temp, directory, data, local)
                if exclusive:
                    await _create(sftp, temp, path)
                else:
                    await _replace(sftp, temp, path)
            except BaseException:
                with suppress(Exception):
                    await sftp.remove(temp)
                raise

    @asynccontextmanager
    async def _channel(self, path: str) -> AsyncIterator[Any]:
        """An SFTP channel of sshfs's pool, with asyncssh's errors as OSErrors."""
        import asyncssh

        fs: Any = self.base
        # sshfs shares its channels through this pool; it has no public way to rename
        # without replacing, so the rename goes through a channel of the pool.
        async with fs._pool.get() as sftp:
            try:
                yield sftp
            except asyncssh.SFTPError as exc:
                raise _sftp_oserror(exc, path) from None


async def _write(
    sftp: Any, temp: str, directory: str, data: bytes | None, local: str | None
) -> None:
    """Upload to ``temp``, creating its directory only when the first try finds none (a
    makedirs costs a round trip per path segment)."""
    import asyncssh

    for attempt in (1, 2):
        try:
            if local is not None:
                await sftp.put(local, temp)
            else:
                async with sftp.open(temp, "wb") as f:
                    await f.write(data)
            return
        except asyncssh.SFTPNoSuchFile:
            if attempt == 2:
                raise
            await sftp.makedirs(directory, exist_ok=True)


async def _create(sftp: Any, temp: str, path: str) -> None:
    """Rename ``temp`` to ``path`` unless ``path`` exists (OpenSSH: ``link()`` then
    ``unlink()``, so one of concurrent creators wins); :class:`FileExistsError` else."""
    import asyncssh

    try:
        await sftp.rename(temp, path)
    except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
        # SFTP v3 has no "exists" status: OpenSSH answers a plain failure.
        if await sftp.exists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path) from None
        raise


async def _replace(sftp: Any, temp: str, path: str) -> None:
    """Rename ``temp`` over ``path`` atomically (``posix-rename@openssh.com``).

    A server without the extension gets the best SFTP v3 allows: the old file is moved
    aside, the new one renamed in, the old one removed; a reader may find no file for
    that moment, and a failure puts the old one back.
    """
    import asyncssh

    try:
        await sftp.posix_rename(temp, path)
        return
    except asyncssh.SFTPOpUnsupported:
        pass
    aside = posixpath.join(posixpath.dirname(path) or "/", temp_name())
    try:
        await sftp.rename(path, aside)
    except asyncssh.SFTPNoSuchFile:
        aside = ""
    try:
        await sftp.rename(temp, path)
    except BaseException:
        if aside:
            await sftp.rename(aside, path)
        raise
    if aside:
        await sftp.remove(aside)


_SFTP_ERRORS: Mapping[str, tuple[type[OSError], int]] = {
    "SFTPNoSuchFile": (FileNotFoundError, errno.ENOENT),
    "SFTPNoSuchPath": (FileNotFoundError, errno.ENOENT),
    "SFTPPermissionDenied": (PermissionError, errno.EACCES),
    "SFTPWriteProtect": (PermissionError, errno.EROFS),
    "SFTPFileAlreadyExists": (FileExistsError, errno.EEXIST),
    "SFTPNotADirectory": (NotADirectoryError, errno.ENOTDIR),
    "SFTPFileIsADirectory": (IsADirectoryError, errno.EISDIR),
    "SFTPNoSpaceOnFilesystem": (OSError, errno.ENOSPC),
    "SFTPQuotaExceeded": (OSError, errno.EDQUOT),
    "SFTPConnectionLost": (ConnectionError, errno.ECONNRESET),
    "SFTPNoConnection": (ConnectionError, errno.ENOTCONN),
}


def _silent(exc: BaseException) -> bool:
    """Whether asyncssh dropped the connection because the server stopped answering (its
    keepalive, set from ``read_timeout``, went unanswered)."""
    return "not responding to keepalive" in str(getattr(exc, "reason", ""))


def _silent_error(path: str) -> TimeoutError:
    return TimeoutError(
        errno.ETIMEDOUT, "sftp: the server stopped answering (for read_timeout seconds)", path
    )


def _sftp_oserror(exc: Any, path: str) -> OSError:
    """An asyncssh SFTP error as the OSError it is, with the server's reason."""
    if _silent(exc):
        return _silent_error(path)
    cls, code = _SFTP_ERRORS.get(type(exc).__name__, (OSError, errno.EIO))
    return cls(code, f"sftp: {exc.reason or type(exc).__name__}", path)


def _expand(path: str, home: str | None) -> str:
    if path.startswith("~/") and home:
        return home.rstrip("/") + path[1:]
    return os.path.expanduser(path)


def _check_files(where: str, options: Mapping[str, Any]) -> None:
    """Refuse unreadable key and known_hosts files before connecting: asyncssh would raise
    FileNotFoundError, which a storage reads as "no such object"."""
    for key in options.get("client_keys") or ():
        if not os.access(key, os.R_OK):
            raise PermissionError(
                errno.EACCES,
                f"sftp: cannot log in to {where}: the key_file {key} cannot be read",
            )
    known = options["known_hosts"]
    if known is not None and not os.access(known, os.R_OK):
        raise HostKeyError(
            errno.EPERM,
            f"sftp: cannot check the host key of {where}: {known} is missing or unreadable; "
            + _how_to_add(where, known),
        )


def _connect_error(where: str, options: Mapping[str, Any], exc: Exception) -> OSError:
    """The error of a failed connection, one line, naming the host and never a secret."""
    import asyncio  # loaded already by asyncssh; not at the top, where every command pays

    import asyncssh

    user = options.get("username") or "(the local user)"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        known = options["known_hosts"]
        if _host_listed(known, options):
            return HostKeyError(
                errno.EPERM,
                f"sftp: the host key of {where} is not the one {known} holds for it: the "
                "server was reinstalled or its key changed, or someone is intercepting the "
                f"connection; if you can confirm the new key, replace the old line in {known}",
            )
        return HostKeyError(
            errno.EPERM,
            f"sftp: the host key of {where} is unknown: {known} has no key for it; "
            + _how_to_add(where, known),
        )
    if isinstance(exc, (PermissionError, asyncssh.PermissionDenied)):
        return PermissionError(
            errno.EACCES,
            f"sftp: {where} refused the login of user {user}: check the password or key_file",
        )
    if isinstance(exc, asyncssh.KeyImportError):
        return PermissionError(
            errno.EACCES, f"sftp: cannot log in to {where}: the key_file is unusable: {exc}"
        )
    if isinstance(exc, asyncssh.DisconnectError):
        return ConnectionError(errno.ECONNABORTED, f"sftp: {where}: {exc.reason}")
    if isinstance(exc, asyncio.TimeoutError):  # TimeoutError itself from Python 3.11
        return TimeoutError(
            errno.ETIMEDOUT,
            f"sftp: cannot connect to {where}: no SSH login within "
            f"connect_timeout={float(options.get('connect_timeout') or 0):g} s",
        )
    # Never a FileNotFoundError: a storage reads that as "no such object".
    cls = type(exc) if isinstance(exc, (ConnectionError, TimeoutError)) else ConnectionError
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return cls(
        getattr(exc, "errno", None) or errno.EIO, f"sftp: cannot connect to {where}: {reason}"
    )


def _transient(exc: Exception) -> bool:
    """Whether a failed connection may succeed when tried again: refused, reset, timed
    out, dropped; not a refused login or host key (sshfs turns asyncssh's refused login
    into PermissionError)."""
    import asyncio

    import asyncssh

    if isinstance(exc, (asyncssh.ConnectionLost, asyncio.TimeoutError)):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, (PermissionError, FileNotFoundError))


def _host_listed(known: str, options: Mapping[str, Any]) -> bool:
    import asyncssh

    try:
        keys = asyncssh.read_known_hosts(known).match(
            options["host"], options["host"], options["port"]
        )
    except Exception:
        return False
    return bool(keys[0])


def _how_to_add(where: str, known: str) -> str:
    host, _, port = where.rpartition(":")
    return (
        f"check its fingerprint, then add it: ssh-keyscan -p {port} {host} >> {known} "
        "(known_hosts=none skips the check, unsafely)"
    )


SCHEMES = (
    Scheme(
        name="sftp",
        parse=parse_sftp,
        params=PARAMS,
        extra="sftp",
        requires=("sshfs",),
        backend=SFTPBackend,
        details=details,
    ),
)
