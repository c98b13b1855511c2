"""``storage-dsn update-metadata DSN [PREFIX] [--dry-run]``: the DSN's upload settings and
guessed content types re-applied to stored objects (:meth:`Storage.update_metadata`).

A progress bar on a terminal, a line per changed object otherwise, then a summary. Exit 0
when every object is right, 1 when some failed or could not be fixed in place (listed).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from ..dsn import secret_values
from ..metadata import MetadataEvent, MetadataResult
from ..storage import open_storage
from .commands import resolve_dsn
from .output import Output

__all__ = ["cmd_update_metadata"]


def cmd_update_metadata(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    storage = open_storage(resolve_dsn(args.dsn, environ))
    out.hide(secret_values(storage.config))
    show = _progress(out, args.dry_run)
    try:
        result = storage.update_metadata(args.prefix, dry_run=args.dry_run, progress=show)
    finally:
        close = getattr(show, "close", None)
        if close is not None:
            close()
    if not result.supported:
        out.line(
            "this storage keeps no per-object metadata (its server gives the content type "
            "by the file name): nothing to update"
        )
        return 0
    _summary(result, out)
    return 1 if result.failed or result.skipped else 0


def _progress(out: Output, dry_run: bool) -> Callable[[MetadataEvent], None]:
    """A bar on a terminal (with the ``cli`` extra), plain lines otherwise."""
    if out.stderr.isatty():
        try:
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            out.error('no progress bar without tqdm: pip install "storage-dsn[cli]"')
        else:
            return _Bar(out, tqdm, dry_run)
    return _Lines(out, dry_run)


class _Lines:
    """A line per object changed, skipped or failed; the unchanged ones only count."""

    def __init__(self, out: Output, dry_run: bool) -> None:
        self.out = out
        self.verb = "would update" if dry_run else "updated"

    def __call__(self, event: MetadataEvent) -> None:
        if event.outcome == "updated":
            self.out.line(f"{self.verb} {event.key} ({event.detail})")
        elif event.outcome == "skipped":
            self.out.line(f"skipped {event.key}: {event.detail}")
        elif event.outcome == "failed":
            self.out.error(f"failed: {event.key}: {event.detail}")


class _Bar:
    """A tqdm bar over the objects, with what was changed so far."""

    def __init__(self, out: Output, tqdm: Any, dry_run: bool) -> None:
        self.out = out
        self._tqdm = tqdm
        self.bar: Any = None
        self.changed = 0
        self.verb = "would update" if dry_run else "updated"

    def __call__(self, event: MetadataEvent) -> None:
        if self.bar is None:
            self.bar = self._tqdm(
                total=event.total,
                unit="obj",
                file=self.out.stderr,
                desc="update-metadata",
                dynamic_ncols=True,
            )
        if event.outcome == "updated":
            self.changed += 1
        elif event.outcome in ("skipped", "failed"):
            text = f"{event.outcome}: {event.key}: {event.detail}"
            self.bar.write(self.out.scrub(text), file=self.out.stderr)
        self.bar.set_postfix_str(f"{self.changed} {self.verb}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _summary(result: MetadataResult, out: Output) -> None:
    for key, error in result.failed.items():
        out.error(f"failed: {key}: {error}")
    verb = "would update" if result.dry_run else "updated"
    out.line(
        f"checked {result.checked}: {verb} {len(result.updated)}, {result.unchanged} "
        f"already right, skipped {len(result.skipped)}, failed {len(result.failed)}"
    )
