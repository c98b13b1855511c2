"""``storage-dsn sync``: the command, its dry run and its summaries, over
:mod:`storage_dsn.sync`. Imported only when the command runs (the sync engine is the
largest module a small ``cat`` would otherwise pay for at start-up).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ..storage import Storage
from ..sync import (
    ListingError,
    Plan,
    SyncResult,
    changes,
    exclude_matcher,
    parse_shard,
    plan_sync,
    sync,
)
from .commands import UsageError, open_for_transfer
from .output import Output, progress, size

__all__ = ["cmd_sync"]


def cmd_sync(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    src = open_for_transfer(args.src, environ, out)
    dst = open_for_transfer(args.dst, environ, out)
    if src.config == dst.config:
        raise UsageError("the source and the destination are the same storage")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    shard = _shard(args.shard)
    try:
        exclude_matcher(args.exclude)
    except ValueError as exc:
        raise UsageError(f"--exclude: {exc}") from None
    options: dict[str, Any] = {
        "delete": args.delete,
        "checksum": args.checksum,
        "exclude": args.exclude,
        "shard": shard,
    }
    if args.dry_run:
        if args.json:
            return _dry_run_json(plan_sync(src, dst, **options), src, dst, out)
        return _dry_run(src, dst, options, out)
    if args.json:
        result = sync(src, dst, jobs=args.jobs, **options)
        _summary_json(result, src, dst, out)
    else:
        out.line(f"from {src.config}")
        out.line(f"to   {dst.config}")
        result = sync(src, dst, reporter=progress(out), jobs=args.jobs, **options)
        _summary(result, out)
    return 0 if result.ok else 1


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise UsageError(f"--shard: {exc}") from None


def _dry_run(src: Storage, dst: Storage, options: dict[str, Any], out: Output) -> int:
    """Print each change as the merged listings reveal it (nothing is held whole)."""
    copies = deletes = nbytes = 0
    up_to_date = [0]
    ignored = [0]

    def skip(_key: str) -> None:
        up_to_date[0] += 1

    def ignore(name: str, reason: str) -> None:
        ignored[0] += 1
        out.line(f"would ignore {name}: {reason}")

    try:
        for change in changes(src, dst, skipped=skip, ignored=ignore, **options):
            if change.action == "copy":
                assert change.stat is not None
                copies += 1
                nbytes += change.stat.size
                out.line(f"would copy   {change.key} ({size(change.stat.size)})")
            else:
                deletes += 1
                out.line(f"would delete {change.key}")
    except ListingError as exc:
        out.error(str(exc))
        out.line(f"dry run incomplete: {copies} to copy so far ({size(nbytes)}), no deletes")
        return 1
    out.line(
        f"dry run: {copies} to copy ({size(nbytes)}), {deletes} to delete, "
        f"{up_to_date[0]} up to date" + (f", {ignored[0]} ignored" if ignored[0] else "")
    )
    return 0


def _dry_run_json(plan: Plan, src: Storage, dst: Storage, out: Output) -> int:
    for error in plan.errors:
        out.error(f"{error}; the plan is incomplete")
    out.json(
        {
            "source": src.config.redacted(),
            "destination": dst.config.redacted(),
            "dry_run": True,
            "copy": [{"key": key, "size": st.size} for key, st in plan.copy],
            "delete": plan.delete,
            "skipped": plan.skipped,
            "ignored": {name: out.scrub(why) for name, why in sorted(plan.ignored.items())},
            "errors": [out.scrub(error) for error in plan.errors],
            "bytes": plan.copy_bytes,
        }
    )
    return 1 if plan.errors else 0


def _summary_json(result: SyncResult, src: Storage, dst: Storage, out: Output) -> None:
    for error in result.errors:
        out.error(f"failed: {error}; nothing was deleted")
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
            "errors": [out.scrub(error) for error in result.errors],
            "ignored": {name: out.scrub(why) for name, why in sorted(result.ignored.items())},
            "server_side": result.server_side,
            "bytes": result.bytes,
            "seconds": round(result.seconds, 3),
        }
    )


def _summary(result: SyncResult, out: Output) -> None:
    for name, reason in sorted(result.ignored.items()):
        out.warning(f"ignored: {name}: {reason}")
    for error in result.errors:
        out.error(f"failed: {error}; nothing was deleted")
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
