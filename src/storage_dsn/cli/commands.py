"""The commands of ``storage-dsn``: each takes its parsed arguments, the environment and
the output, and returns the exit code (0 done, 1 some objects or steps failed, 2 usage).

Each storage argument is a DSN, the name of an environment variable holding one
(``DEFAULT_STORAGE_DSN``), or a local path (``./data/media`` means ``file:./data/media/``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..backend import DEFAULT_JOBS, SWEEP_AGE, chunks
from ..dsn import secret_values
from ..registry import get_scheme, parse_dsn
from ..storage import DEFAULT_ENV, Storage, open_storage
from .output import Output, iso, iso_json, one_line, size

__all__ = [
    "UsageError",
    "cmd_cat",
    "cmd_check",
    "cmd_ls",
    "cmd_put",
    "cmd_rm",
    "cmd_url",
    "open_for_transfer",
    "open_storage_arg",
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


def open_storage_arg(arg: str | None, environ: Mapping[str, str], out: Output) -> Storage:
    storage = open_storage(resolve_dsn(arg, environ))
    out.hide(secret_values(storage.config))
    return storage


def open_for_transfer(arg: str, environ: Mapping[str, str], out: Output) -> Storage:
    """Like :func:`open_storage_arg`, through the engine that suits transfers
    (``Storage.for_transfer``)."""
    return open_storage_arg(arg, environ, out).for_transfer()


# -- commands ---------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    if args.public and args.json:
        raise UsageError("--public reports in lines, not JSON: leave out --json")
    if args.repair and not args.connect:
        raise UsageError("--repair works on the storage: give --connect too")
    config = parse_dsn(resolve_dsn(args.dsn, environ))
    out.hide(secret_values(config))
    rows = get_scheme(config.scheme).describe(config)
    if not args.json:
        for name, value in rows:
            out.line(f"{name:<12} {value}")
    # Opening checks that the scheme's extra is installed: only when the storage is used.
    storage = open_storage(config.to_dsn()) if args.connect or args.public else None
    steps = _probe(storage, out, quiet=args.json) if storage is not None and args.connect else []
    status = 1 if any(not step["ok"] for step in steps) else 0
    repaired: dict[str, Any] | None = None
    if args.repair and not status and storage is not None:
        repaired = _repair(storage, out, quiet=args.json)
        status = 0 if repaired["ok"] else 1
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
        if repaired is not None:
            report["repair"] = repaired
        out.json(report)
    if args.public and not status and storage is not None:
        from .public import check_public  # urllib.request: only for --public

        return check_public(storage, out)
    return status


def _repair(storage: Storage, out: Output, *, quiet: bool = False) -> dict[str, Any]:
    """Sweep the temporary files of killed writers (``Storage.sweep_temp``)."""
    try:
        removed = storage.sweep_temp(SWEEP_AGE)
    except Exception as exc:  # reported like the probe's steps
        if not quiet:
            out.line(f"{'repair':<12} FAILED: {one_line(exc)}")
        return {"ok": False, "error": out.scrub(one_line(exc))}
    plural = "" if removed == 1 else "s"
    if not quiet:
        out.line(
            f"{'repair':<12} removed {removed} temporary file{plural} older than "
            f"{SWEEP_AGE // 3600} h (left by killed writers)"
        )
    return {"ok": True, "removed": removed}


def _probe(storage: Storage, out: Output, *, quiet: bool = False) -> list[dict[str, Any]]:
    """Write, read and delete a probe; each step's outcome, printed unless ``quiet``."""
    import secrets

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
    storage = open_storage_arg(args.dsn, environ, out)

    def invalid(name: str, reason: str) -> None:
        # Shown where it sorts, escaped like every name; no command can read it.
        if args.json:
            out.json({"key": name, "invalid": out.scrub(reason)})
        else:
            out.line(f"{'?':>12}  {iso(None)}  {name}" if args.long else name)
        out.warning(f"{name}: not a valid key, listed only (sync skips it): {reason}")

    for key, st in storage.scan(args.prefix, invalid=invalid):
        if args.json:
            out.json({"key": key, "size": st.size, "mtime": iso_json(st.mtime), "etag": st.etag})
        elif args.long:
            amount = str(st.size) if args.bytes else size(st.size)
            out.line(f"{amount:>12}  {iso(st.mtime)}  {key}")
        else:
            out.line(key)
    return 0


def cmd_url(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    out.line(
        open_storage_arg(args.dsn, environ, out).url(args.key, expires=args.expires), scrub=False
    )
    return 0


def cmd_cat(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    storage = open_for_transfer(args.dsn, environ, out)
    with storage.open(args.key, "rb") as f:
        for chunk in chunks(f):
            sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
    return 0


def cmd_put(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    storage = open_for_transfer(args.dsn, environ, out)
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
    storage = open_storage_arg(args.dsn, environ, out)
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
    storage = open_storage_arg(args.dsn, environ, out)
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
    from concurrent.futures import ThreadPoolExecutor

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
