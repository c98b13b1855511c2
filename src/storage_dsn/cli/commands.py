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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..dsn import secret_values
from ..registry import get_scheme, parse_dsn
from ..storage import DEFAULT_ENV, Storage, open_storage
from ..sync import DEFAULT_JOBS, Plan, SyncResult, exclude_matcher, plan_sync, sync
from .output import Output, iso, iso_json, one_line, progress, size

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
    config = parse_dsn(resolve_dsn(args.dsn, environ))
    out.hide(secret_values(config))
    rows = get_scheme(config.scheme).describe(config)
    if not args.json:
        for name, value in rows:
            out.line(f"{name:<12} {value}")
    steps = _probe(open_storage(config.to_dsn()), out, quiet=args.json) if args.connect else []
    if args.json:
        report: dict[str, Any] = {
            "dsn": config.redacted(),
            "scheme": config.scheme,
            "protocol": config.protocol,
            "root": config.root,
            "public_url": config.public_url,
            "signed_urls": config.signed_urls,
            "url_expires": config.url_expires,
            "details": dict(rows),
        }
        if args.connect:
            report["connect"] = steps
        out.json(report)
    return 1 if any(not step["ok"] for step in steps) else 0


def _probe(storage: Storage, out: Output, *, quiet: bool = False) -> list[dict[str, Any]]:
    """Write, read and delete a probe; each step's outcome, printed unless ``quiet``."""
    key = f".storage-dsn-check-{secrets.token_hex(6)}.txt"
    payload = f"storage-dsn check {time.time()}\n".encode()
    steps: list[tuple[str, Callable[[], None]]] = [
        ("write", lambda: storage.write_bytes(key, payload)),
        ("read", lambda: _expect(storage.read_bytes(key), payload)),
        ("delete", lambda: storage.delete(key)),
    ]
    done: list[dict[str, Any]] = []
    for name, step in steps:
        started = time.perf_counter()
        try:
            step()
        except Exception as exc:  # every failure is reported the same way
            done.append({"step": name, "ok": False, "error": out.scrub(one_line(exc))})
            if not quiet:
                out.line(f"{name:<12} FAILED: {one_line(exc)}")
            break
        ms = round((time.perf_counter() - started) * 1000, 1)
        done.append({"step": name, "ok": True, "ms": ms})
        if not quiet:
            out.line(f"{name:<12} ok ({ms:.0f} ms)")
    return done


def _expect(got: bytes, wanted: bytes) -> None:
    if got != wanted:
        raise ValueError("read back different bytes than were written")


def cmd_ls(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    storage = _open(args.dsn, environ, out)
    if args.json:
        for key, st in storage.scan(args.prefix):
            out.json({"key": key, "size": st.size, "mtime": iso_json(st.mtime), "etag": st.etag})
    elif args.long:
        for key, st in storage.scan(args.prefix):
            amount = str(st.size) if args.bytes else size(st.size)
            out.line(f"{amount:>12}  {iso(st.mtime)}  {key}")
    else:
        for key in storage.list(args.prefix):
            out.line(key)
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
    if args.recursive:
        return _rm_recursive(args, environ, out)
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


def _rm_recursive(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    """``rm --recursive``: every key under each prefix, after a confirmation."""
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("rm --recursive without a terminal to confirm on needs --yes")
    storage = _open(args.dsn, environ, out)
    keys = sorted({key for prefix in args.keys for key in _under(storage, prefix)})
    where = ", ".join(repr(p) if p else "the whole storage" for p in args.keys)
    if not keys:
        out.error(f"no keys under {where}")
        return 1
    count = f"{len(keys)} key{'' if len(keys) == 1 else 's'}"
    if not args.yes and not out.confirm(f"delete {count} under {where} in {storage.config}?"):
        out.error("nothing deleted")
        return 1
    failed: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=DEFAULT_JOBS) as pool:
        for key, error in zip(keys, pool.map(lambda k: _delete(storage, k), keys), strict=True):
            if error is not None:
                failed[key] = error
    for key, error in failed.items():
        out.error(f"failed: {key}: {error}")
    done = len(keys) - len(failed)
    out.line(f"deleted {done} key{'' if done == 1 else 's'}, failed {len(failed)}")
    return 1 if failed else 0


def _under(storage: Storage, prefix: str) -> list[str]:
    """The keys under ``prefix`` read as a directory (``photos`` is not ``photos2/``),
    and the key ``prefix`` itself; ``""`` is the whole storage."""
    if not prefix:
        return list(storage.list())
    base = prefix.rstrip("/")
    inside = base + "/"
    return [k for k in storage.list(base) if k.startswith(inside) or k == prefix]


def _delete(storage: Storage, key: str) -> str | None:
    """Delete ``key``; the error as one line, or ``None`` (gone already counts as done)."""
    try:
        storage.delete(key)
    except FileNotFoundError:
        return None
    except Exception as exc:  # reported per key; the others go on
        return one_line(exc)
    return None


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
    try:
        exclude_matcher(args.exclude)
    except ValueError as exc:
        raise UsageError(f"--exclude: {exc}") from None
    options: dict[str, Any] = {
        "delete": args.delete,
        "checksum": args.checksum,
        "exclude": args.exclude,
        "jobs": args.jobs,
    }
    if args.dry_run:
        return _dry_run(plan_sync(src, dst, **options), src, dst, args.json, out)
    if args.json:
        result = sync(src, dst, **options)
        _summary_json(result, src, dst, out)
    else:
        out.line(f"from {src.config}")
        out.line(f"to   {dst.config}")
        result = sync(src, dst, reporter=progress(out), **options)
        _summary(result, out)
    return 1 if result.failed else 0


def _dry_run(plan: Plan, src: Storage, dst: Storage, as_json: bool, out: Output) -> int:
    if as_json:
        out.json(
            {
                "source": src.config.redacted(),
                "destination": dst.config.redacted(),
                "dry_run": True,
                "copy": [{"key": key, "size": st.size} for key, st in plan.copy],
                "delete": plan.delete,
                "skipped": plan.skipped,
                "bytes": plan.copy_bytes,
            }
        )
        return 0
    for key, st in plan.copy:
        out.line(f"would copy   {key} ({size(st.size)})")
    for key in plan.delete:
        out.line(f"would delete {key}")
    out.line(
        f"dry run: {len(plan.copy)} to copy ({size(plan.copy_bytes)}), "
        f"{len(plan.delete)} to delete, {plan.skipped} up to date"
    )
    return 0


def _summary_json(result: SyncResult, src: Storage, dst: Storage, out: Output) -> None:
    for key, error in sorted(result.failed.items()):
        out.error(f"failed: {key}: {error}")
    out.json(
        {
            "source": src.config.redacted(),
            "destination": dst.config.redacted(),
            "dry_run": False,
            "copied": result.copied,
            "skipped": result.skipped,
            "deleted": result.deleted,
            "failed": {key: out.scrub(error) for key, error in sorted(result.failed.items())},
            "bytes": result.bytes,
            "seconds": round(result.seconds, 3),
        }
    )


def _summary(result: SyncResult, out: Output) -> None:
    for key, error in sorted(result.failed.items()):
        out.error(f"failed: {key}: {error}")
    rate = result.bytes / result.seconds if result.seconds else 0.0
    out.line(
        f"copied {result.copied}, skipped {result.skipped}, deleted {result.deleted}, "
        f"failed {len(result.failed)}; {size(result.bytes)} in {result.seconds:.1f} s "
        f"({size(int(rate))}/s)"
    )
