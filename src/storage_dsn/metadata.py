"""Re-applying a DSN's upload settings to objects already stored (``update-metadata``).

An earlier sync, another tool or an older DSN can leave objects with the wrong content type
(``application/octet-stream`` images that browsers download instead of showing), no
``Cache-Control``, or a private ACL. :meth:`Storage.update_metadata` asks the backend to fix
each one in place (:meth:`Backend.fix_metadata`: S3 copies the object onto itself with
replaced metadata, Azure sets the blob's properties, GCS patches the object) and collects
what happened in a :class:`MetadataResult`. This module is the loop; it knows no backend.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .backend import METADATA_JOBS, MetadataFix
from .errors import InvalidKeyError, StorageDSNError

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["DEFAULT_JOBS", "MetadataEvent", "MetadataResult", "update_all"]

#: Objects checked at once: each costs a round trip or two, mostly waiting.
DEFAULT_JOBS = METADATA_JOBS


@dataclass(frozen=True)
class MetadataEvent:
    """One object done, for a progress display."""

    key: str
    #: ``unchanged``, ``updated`` (with ``dry_run``: would be), ``skipped`` or ``failed``.
    outcome: str
    #: What changed (``content-type, cache-control``), why it was skipped, or the error.
    detail: str
    #: Objects done so far, this one included, and how many there are.
    done: int
    total: int


@dataclass
class MetadataResult:
    """What :meth:`Storage.update_metadata` did."""

    #: Whether nothing was changed because it was a dry run.
    dry_run: bool = False
    #: ``False`` when the backend keeps no per-object metadata: nothing was checked.
    supported: bool = True
    #: Objects looked at.
    checked: int = 0
    #: key -> the settings that were (with ``dry_run``: would be) changed.
    updated: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: key -> why it could not be fixed in place.
    skipped: dict[str, str] = field(default_factory=dict)
    #: key -> the error, one line.
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def unchanged(self) -> int:
        """Objects that were already right."""
        return self.checked - len(self.updated) - len(self.skipped) - len(self.failed)


def update_all(
    keys: Sequence[str],
    fix: Callable[[str], MetadataFix],
    *,
    dry_run: bool = False,
    progress: Callable[[MetadataEvent], None] | None = None,
    jobs: int = DEFAULT_JOBS,
) -> MetadataResult:
    """``fix(key)`` for each key, ``jobs`` at a time; a failure is recorded and the rest go
    on, except a :class:`StorageDSNError` (a missing extra, a bad config), which would fail
    every object the same way and is raised. A key this package refuses
    (:class:`InvalidKeyError`, stored by another tool) is skipped."""
    result = MetadataResult(dry_run=dry_run)
    # A window of requests in flight, answered in key order (not as they finish, so the
    # same run prints the same lines): memory stays bounded however many keys there are.
    from concurrent.futures import ThreadPoolExecutor

    window: deque[tuple[str, Future[MetadataFix]]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            for key in keys:
                window.append((key, pool.submit(fix, key)))
                if len(window) >= 4 * jobs:
                    _done(result, *window.popleft(), len(keys), progress)
            while window:
                _done(result, *window.popleft(), len(keys), progress)
        except BaseException:
            for _, pending in window:
                pending.cancel()
            raise
    result.updated = dict(sorted(result.updated.items()))
    result.skipped = dict(sorted(result.skipped.items()))
    result.failed = dict(sorted(result.failed.items()))
    return result


def _done(
    result: MetadataResult,
    key: str,
    future: Future[MetadataFix],
    total: int,
    progress: Callable[[MetadataEvent], None] | None,
) -> None:
    outcome, detail = _record(result, key, future.exception() or future.result())
    result.checked += 1
    if progress is not None:
        progress(MetadataEvent(key, outcome, detail, result.checked, total))


def _record(
    result: MetadataResult, key: str, answer: MetadataFix | BaseException
) -> tuple[str, str]:
    if isinstance(answer, InvalidKeyError):  # stored by another tool under a name we refuse
        result.skipped[key] = str(answer)
        return "skipped", result.skipped[key]
    if isinstance(answer, StorageDSNError) or not isinstance(answer, (MetadataFix, Exception)):
        raise answer
    if isinstance(answer, Exception):
        result.failed[key] = _one_line(answer)
        return "failed", result.failed[key]
    if answer.skipped is not None:
        result.skipped[key] = answer.skipped
        return "skipped", answer.skipped
    if answer.changed:
        result.updated[key] = answer.changed
        return "updated", ", ".join(answer.changed)
    return "unchanged", ""


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0][:300] if lines else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
