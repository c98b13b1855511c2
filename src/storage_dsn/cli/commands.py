"""The commands of ``storage-dsn``: each takes its parsed arguments, the environment and
the output, and returns the exit code (0 done, 1 some objects or steps failed, 2 usage).

Each storage argument is a DSN, the name of an environment variable holding one
(``DEFAULT_STORAGE_DSN``), or a local path (``./data/media`` means ``file:./data/media/``).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..backend import SWEEP_AGE
from ..dsn import secret_values
from ..registry import get_scheme, parse_dsn
from ..storage import DEFAULT_ENV, Storage, open_storage
from ..sync import SyncResult, plan_sync, sync
from .output import Output, iso, one_line, progress, size

__all__ = [
    "UsageError",
    "cmd_cat",
    "cmd_check",
    "cmd_ls",
    "cmd_put",
    "cmd_rm",
    "cmd_sync",
    "cmd_url",
    "resolve_dsn",
]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# A DSN whose colon went missing ("s3//bucket/x") would otherwise read as a local path.
_SCHEME_TYPO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)//")


class UsageError(Exception):
    """A bad argument: exit 2."""


def resolve_dsn(arg: str | None, environ: Mapping[str, str]) -> str:
    """A DSN from a DSN, an environment variable's name, or a local path."""
    if arg is None:
        arg = DEFAULT_ENV
    if arg[:1] in ("'", '"') or arg[-1:] in ("'", '"'):
        raise UsageError(
            "the storage argument is in quotes: write the DSN without them (quotes from a "
            ".env file or a shell are not part of the value)"
        )
    if _SCHEME.match(arg):
        return arg
    typo = _SCHEME_TYPO.match(arg)
    if typo:
        raise UsageError(
            f"{typo.group(1)!r} followed by '//' looks like a DSN missing its ':'; "
            f"write {typo.group(1)}://..."
        )
    if _ENV_NAME.match(arg) and arg in environ:
        return environ[arg]
    if arg.startswith((".", "/", "~")) or os.sep in arg or os.path.isdir(arg):
        path = os.path.abspath(os.path.expanduser(arg))
        return f"file://{path}/"
    raise UsageError(
        f"{arg!r} is not a DSN, a set environment variable, or a path "
        "(write ./name for a directory here)"
    )


def _open(arg: str | None, environ: Mapping[str, str], out: Output) -> Storage:
    storage = open_storage(resolve_dsn(arg, environ))
    out.hide(secret_values(storage.config))
    return storage


# -- commands ---------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    if args.repair and not args.connect:
        raise UsageError("--repair works on the storage: give --connect too")
    config = parse_dsn(resolve_dsn(args.dsn, environ))
    out.hide(secret_values(config))
    for name, value in get_scheme(config.scheme).describe(config):
        out.line(f"{name:<12} {value}")
    if not args.connect:
        return 0
    storage = open_storage(config.to_dsn())
    status = _probe(storage, out)
    if args.repair and status == 0:
        status = _repair(storage, out)
    return status


def _repair(storage: Storage, out: Output) -> int:
    """Sweep the temporary files of killed writers (``Storage.sweep_temp``)."""
    try:
        removed = storage.sweep_temp(SWEEP_AGE)
    except Exception as exc:  # reported like the probe's steps
        out.line(f"{'repair':<12} FAILED: {one_line(exc)}")
        return 1
    plural = "" if removed == 1 else "s"
    out.line(
        f"{'repair':<12} removed {removed} temporary file{plural} older than "
        f"{SWEEP_AGE // 3600} h (left by killed writers)"
    )
    return 0


def _probe(storage: Storage, out: Output) -> int:
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
            out.line(f"{name:<12} FAILED: {one_line(exc)}")
            return 1
        out.line(f"{name:<12} ok ({(time.perf_counter() - started) * 1000:.0f} ms)")
    return 0


def _expect(got: bytes, wanted: bytes) -> None:
    if got != wanted:
        raise ValueError("read back different bytes than were written")


def cmd_ls(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    storage = _open(args.dsn, environ, out)

    def invalid(name: str, reason: str) -> None:
        # Shown where it sorts, escaped like every name; no command can read it.
        out.line(f"{'?':>12}  {iso(None)}  {name}" if args.long else name)
        out.warning(f"{name}: not a valid key, listed only (sync skips it): {reason}")

    for key, st in storage.scan(args.prefix, invalid=invalid):
        out.line(f"{st.size:>12}  {iso(st.mtime)}  {key}" if args.long else key)
    return 0


def cmd_url(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    out.line(_open(args.dsn, environ, out).url(args.key, expires=args.expires), scrub=False)
    return 0


def cmd_cat(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    storage = _open(args.dsn, environ, out)
    with storage.open(args.key, "rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer, 1024 * 1024)
    sys.stdout.buffer.flush()
    return 0


def cmd_put(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    storage = _open(args.dsn, environ, out)
    if args.file == "-":
        storage.save(args.key, sys.stdin.buffer)
    else:
        with open(args.file, "rb") as f:
            storage.save(args.key, f)
    out.line(f"stored {args.key}")
    return 0


def cmd_rm(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
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


def _open_for_transfer(arg: str, environ: Mapping[str, str], out: Output) -> Storage:
    """Like _open, through the engine that suits transfers (``Storage.for_transfer``)."""
    return _open(arg, environ, out).for_transfer()


def cmd_sync(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
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
            out.line(f"would copy   {key} ({size(st.size)})")
        for key in plan.delete:
            out.line(f"would delete {key}")
        for name, reason in sorted(plan.ignored.items()):
            out.line(f"would ignore {name}: {reason}")
        ignored = f", {len(plan.ignored)} ignored" if plan.ignored else ""
        out.line(
            f"dry run: {len(plan.copy)} to copy ({size(plan.copy_bytes)}), "
            f"{len(plan.delete)} to delete, {plan.skipped} up to date{ignored}"
        )
        return 0
    out.line(f"from {src.config}")
    out.line(f"to   {dst.config}")
    reporter = progress(out)
    result = sync(src, dst, reporter=reporter, **options)
    _summary(result, out)
    return 0 if result.ok else 1


def _summary(result: SyncResult, out: Output) -> None:
    for name, reason in sorted(result.ignored.items()):
        out.warning(f"ignored: {name}: {reason}")
    for error in result.errors:
        out.error(f"failed: {error}")
    for key, error in sorted(result.failed.items()):
        out.error(f"failed: {key}: {error}")
    rate = result.bytes / result.seconds if result.seconds else 0.0
    # Names left alone are counted apart from the up-to-date "skipped", only when there
    # are any: "ignored" is not a failure and keeps the exit code 0.
    ignored = f", ignored {len(result.ignored)}" if result.ignored else ""
    out.line(
        f"copied {result.copied}, skipped {result.skipped}, deleted {result.deleted}, "
        f"failed {len(result.failed) + len(result.errors)}{ignored}; "
        f"{size(result.bytes)} in {result.seconds:.1f} s ({size(int(rate))}/s)"
    )
