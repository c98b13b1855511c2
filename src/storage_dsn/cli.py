"""The ``storage-dsn`` command (also ``python -m storage_dsn``).

Each storage argument is a DSN, the name of an environment variable holding one
(``DEFAULT_STORAGE_DSN``), or a local path (``./data/media`` means ``file:./data/media/``).
Exit codes: 0 done, 1 some objects or steps failed (listed), 2 usage or DSN error. No
secret is ever printed: configs print redacted, and every line of output is scrubbed of
the secrets of the storages in use.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import IO, Any

from . import __version__
from .dsn import _SECRET_NAME, StorageConfig
from .errors import MissingBackendError, StorageDSNError
from .registry import get_scheme
from .storage import DEFAULT_ENV, Storage, open_storage
from .sync import DEFAULT_JOBS, SyncResult, plan_sync, sync

__all__ = ["main"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class UsageError(Exception):
    """A bad argument: exit 2."""


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    out = _Output(sys.stdout, sys.stderr)
    try:
        return int(args.func(args, environ, out))
    except (StorageDSNError, UsageError) as exc:
        out.error(str(exc))
        return 2
    except KeyboardInterrupt:
        out.error("interrupted; run the command again to finish (nothing is left half-written)")
        return 1
    except (OSError, ValueError) as exc:
        out.error(f"{type(exc).__name__}: {exc}")
        return 1


def resolve_dsn(arg: str | None, environ: Mapping[str, str]) -> str:
    """A DSN from a DSN, an environment variable's name, or a local path."""
    if arg is None:
        arg = DEFAULT_ENV
    if _SCHEME.match(arg):
        return arg
    if _ENV_NAME.match(arg) and arg in environ:
        return environ[arg]
    if arg.startswith((".", "/", "~")) or os.sep in arg or os.path.isdir(arg):
        path = os.path.abspath(os.path.expanduser(arg))
        return f"file://{path}/"
    raise UsageError(
        f"{arg!r} is not a DSN, a set environment variable, or a path "
        "(write ./name for a directory here)"
    )


def _open(arg: str | None, environ: Mapping[str, str], out: _Output) -> Storage:
    storage = open_storage(resolve_dsn(arg, environ))
    out.hide(_secrets_of(storage.config))
    return storage


# -- commands ---------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, environ: Mapping[str, str], out: _Output) -> int:
    from .dsn import parse_dsn

    config = parse_dsn(resolve_dsn(args.dsn, environ))
    out.hide(_secrets_of(config))
    for name, value in _describe(config):
        out.line(f"{name:<12} {value}")
    if not args.connect:
        return 0
    storage = open_storage(config.to_dsn())
    return _probe(storage, out)


def _describe(config: StorageConfig) -> list[tuple[str, str]]:
    scheme = get_scheme(config.scheme)
    if scheme.requires_for is not None:
        needed = list(scheme.requires_for(config))
    else:
        needed = [(module, scheme.extra) for module in scheme.requires]
    try:
        scheme.check_installed(config)
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
    if config.protocol == "s3":
        from .schemes.s3 import location

        loc = location(config)
        rows += [
            ("bucket", loc.bucket),
            ("prefix", loc.prefix or "(none)"),
            ("region", loc.region),
            ("endpoint", loc.endpoint),
            ("style", "path" if loc.path_style else "virtual host"),
        ]
    rows += [
        ("public URL", config.public_url or "(none: add url= or domain=)"),
        ("signed URLs", f"yes, {config.url_expires} s" if config.signed_urls else "no"),
    ]
    return rows


def _probe(storage: Storage, out: _Output) -> int:
    key = f".storage-dsn-check-{secrets.token_hex(6)}.txt"
    payload = f"storage-dsn check {time.time()}\n".encode()
    steps: list[tuple[str, Callable[[], None]]] = [
        ("write", lambda: storage.write_bytes(key, payload)),
        ("read", lambda: _expect(storage.read_bytes(key), payload)),
        ("delete", lambda: storage.delete(key)),
    ]
    for name, step in steps:
        started = time.perf_counter()
        try:
            step()
        except Exception as exc:  # every failure is reported the same way
            out.line(f"{name:<12} FAILED: {type(exc).__name__}: {exc}")
            return 1
        out.line(f"{name:<12} ok ({(time.perf_counter() - started) * 1000:.0f} ms)")
    return 0


def _expect(got: bytes, wanted: bytes) -> None:
    if got != wanted:
        raise ValueError("read back different bytes than were written")


def cmd_ls(args: argparse.Namespace, environ: Mapping[str, str], out: _Output) -> int:
    storage = _open(args.dsn, environ, out)
    if args.long:
        for key, st in storage.scan(args.prefix):
            when = _iso(st.mtime)
            out.line(f"{st.size:>12}  {when}  {key}")
    else:
        for key in storage.list(args.prefix):
            out.line(key)
    return 0


def cmd_url(args: argparse.Namespace, environ: Mapping[str, str], out: _Output) -> int:
    out.line(_open(args.dsn, environ, out).url(args.key, expires=args.expires), scrub=False)
    return 0


def cmd_cat(args: argparse.Namespace, environ: Mapping[str, str], out: _Output) -> int:
    storage = _open(args.dsn, environ, out)
    with storage.open(args.key, "rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer, 1024 * 1024)
    sys.stdout.buffer.flush()
    return 0


def cmd_put(args: argparse.Namespace, environ: Mapping[str, str], out: _Output) -> int:
    storage = _open(args.dsn, environ, out)
    if args.file == "-":
        storage.save(args.key, sys.stdin.buffer)
    else:
        with open(args.file, "rb") as f:
            storage.save(args.key, f)
    out.line(f"stored {args.key}")
    return 0


def cmd_rm(args: argparse.Namespace, environ: Mapping[str, str], out: _Output) -> int:
    storage = _open(args.dsn, environ, out)
    status = 0
    for key in args.keys:
        try:
            storage.delete(key)
        except FileNotFoundError:
            out.error(f"no such key: {key}")
            status = 1
        else:
            out.line(f"deleted {key}")
    return status


def _open_for_transfer(arg: str, environ: Mapping[str, str], out: _Output) -> Storage:
    """Like _open, but S3 moves through obstore when it is installed and the DSN allows.

    A sync is a pure transfer, and obstore costs about a tenth of s3fs's CPU per request
    (BENCHMARKS.md). A DSN that names an engine keeps it; one that obstore cannot honour
    (acl=, auth=s3) stays on s3fs.
    """
    import importlib.util
    from urllib.parse import urlsplit

    from .dsn import parse_dsn

    dsn = resolve_dsn(arg, environ)
    split = urlsplit(dsn)
    query_names = {item.partition("=")[0] for item in split.query.split("&") if item}
    if (
        split.scheme.lower() in ("s3", "s3+http")
        and "engine" not in query_names
        and importlib.util.find_spec("obstore") is not None
    ):
        faster = f"{dsn}{'&' if split.query else '?'}engine=obstore"
        try:
            parse_dsn(faster)
        except StorageDSNError:
            pass
        else:
            dsn = faster
    storage = open_storage(dsn)
    out.hide(_secrets_of(storage.config))
    return storage


def cmd_sync(args: argparse.Namespace, environ: Mapping[str, str], out: _Output) -> int:
    src = _open_for_transfer(args.src, environ, out)
    dst = _open_for_transfer(args.dst, environ, out)
    if src.config == dst.config:
        raise UsageError("the source and the destination are the same storage")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    options: dict[str, Any] = {
        "delete": args.delete,
        "checksum": args.checksum,
        "exclude": args.exclude,
        "jobs": args.jobs,
    }
    if args.dry_run:
        plan = plan_sync(src, dst, **options)
        for key, st in plan.copy:
            out.line(f"would copy   {key} ({_size(st.size)})")
        for key in plan.delete:
            out.line(f"would delete {key}")
        out.line(
            f"dry run: {len(plan.copy)} to copy ({_size(plan.copy_bytes)}), "
            f"{len(plan.delete)} to delete, {plan.skipped} up to date"
        )
        return 0
    out.line(f"from {src.config}")
    out.line(f"to   {dst.config}")
    reporter = _progress(out)
    result = sync(src, dst, reporter=reporter, **options)
    _summary(result, out)
    return 1 if result.failed else 0


def _summary(result: SyncResult, out: _Output) -> None:
    for key, error in sorted(result.failed.items()):
        out.error(f"failed: {key}: {error}")
    rate = result.bytes / result.seconds if result.seconds else 0.0
    out.line(
        f"copied {result.copied}, skipped {result.skipped}, deleted {result.deleted}, "
        f"failed {len(result.failed)}; {_size(result.bytes)} in {result.seconds:.1f} s "
        f"({_size(int(rate))}/s)"
    )


# -- output -----------------------------------------------------------------------------


class _Output:
    """stdout/stderr writer that scrubs every known secret from what it prints."""

    def __init__(self, stdout: IO[str], stderr: IO[str]) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self._secrets: set[str] = set()

    def hide(self, values: Iterable[str]) -> None:
        self._secrets.update(v for v in values if len(v) >= 4)

    def scrub(self, text: str) -> str:
        from urllib.parse import quote

        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
        return text

    def line(self, text: str, *, scrub: bool = True) -> None:
        # A presigned URL carries a signature, not the secret; it is the one thing not
        # scrubbed (scrubbing could not hurt it, but makes the intent plain).
        print(self.scrub(text) if scrub else text, file=self.stdout, flush=True)

    def error(self, text: str) -> None:
        print(f"storage-dsn: error: {self.scrub(text)}", file=self.stderr, flush=True)


def _secrets_of(config: StorageConfig) -> list[str]:
    from urllib.parse import unquote, urlsplit

    found = [str(v) for k, v in config.options.items() if _SECRET_NAME.search(k) and v]
    try:
        password = urlsplit(config.to_dsn()).password
    except (StorageDSNError, ValueError):
        password = None
    if password:
        found += [password, unquote(password)]
    return found


class _LineProgress:
    """Plain lines, for logs and pipes."""

    def __init__(self, out: _Output) -> None:
        self.out = out

    def start(self, objects: int, nbytes: int) -> None:
        self.out.line(f"syncing {objects} object{'' if objects == 1 else 's'} ({_size(nbytes)})")

    def copied(self, key: str, nbytes: int) -> None:
        self.out.line(f"copied  {key} ({_size(nbytes)})")

    def deleted(self, key: str) -> None:
        self.out.line(f"deleted {key}")

    def failed(self, key: str, error: str) -> None:
        self.out.error(f"failed: {key}: {error}")

    def close(self) -> None:
        pass


class _BarProgress:
    """A tqdm progress bar (bytes, objects, rate, ETA) on a terminal."""

    def __init__(self, out: _Output, tqdm: Any) -> None:
        self.out = out
        self._tqdm = tqdm
        self.bar: Any = None
        self.objects = 0

    def start(self, objects: int, nbytes: int) -> None:
        self.total_objects = objects
        self.bar = self._tqdm(
            total=nbytes,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=self.out.stderr,
            desc="sync",
            dynamic_ncols=True,
        )

    def _step(self, nbytes: int) -> None:
        self.objects += 1
        self.bar.update(nbytes)
        self.bar.set_postfix_str(f"{self.objects}/{self.total_objects} objects", refresh=False)

    def copied(self, key: str, nbytes: int) -> None:
        self._step(nbytes)

    def deleted(self, key: str) -> None:
        self._step(0)

    def failed(self, key: str, error: str) -> None:
        self.bar.write(self.out.scrub(f"failed: {key}: {error}"), file=self.out.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress(out: _Output) -> Any:
    if out.stderr.isatty():
        try:
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            out.error('no progress bar without tqdm: pip install "storage-dsn[cli]"')
        else:
            return _BarProgress(out, tqdm)
    return _LineProgress(out)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


def _iso(mtime: float | None) -> str:
    if mtime is None:
        return "-" * 19
    return datetime.fromtimestamp(mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


# -- arguments --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storage-dsn",
        description="Check storage DSNs, and list, copy and sync media between storages. "
        "A storage is a DSN, the name of an environment variable holding one, or a path.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="parse a DSN and show what it means")
    p.add_argument("dsn", nargs="?", help=f"DSN, variable or path (default: ${DEFAULT_ENV})")
    p.add_argument("--connect", action="store_true", help="prove write, read and delete")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("ls", help="list keys")
    p.add_argument("dsn")
    p.add_argument("prefix", nargs="?", default="")
    p.add_argument("-l", "--long", action="store_true", help="with size and modification time")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("url", help="print a key's public (or presigned) URL")
    p.add_argument("dsn")
    p.add_argument("key")
    p.add_argument("--expires", type=int, help="presigned URL lifetime in seconds")
    p.set_defaults(func=cmd_url)

    p = sub.add_parser("cat", help="write a key's content to standard output")
    p.add_argument("dsn")
    p.add_argument("key")
    p.set_defaults(func=cmd_cat)

    p = sub.add_parser("put", help="store a file (or standard input, '-') under a key")
    p.add_argument("dsn")
    p.add_argument("key")
    p.add_argument("file")
    p.set_defaults(func=cmd_put)

    p = sub.add_parser("rm", help="delete keys")
    p.add_argument("dsn")
    p.add_argument("keys", nargs="+", metavar="key")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("sync", help="make DST hold what SRC holds")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--delete", action="store_true", help="delete keys SRC does not have")
    p.add_argument("--checksum", action="store_true", help="compare content, not size/time")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="repeatable")
    p.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help=f"default {DEFAULT_JOBS}")
    p.set_defaults(func=cmd_sync)
    return parser
