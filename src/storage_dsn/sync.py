"""Copy and sync objects between any two storages.

``sync(src, dst)`` makes ``dst`` hold what ``src`` holds: it lists both sides once (with
sizes and times, no request per key), copies what is missing, of another size, or newer at
the source (``checksum=True``: of other content), and with ``delete=True`` removes what the
source lacks, after the copies. Small objects move in batches through ``read_many`` and
``write_many`` (concurrent on S3); large ones are streamed, never held whole in memory.
Every write is atomic, so an interrupted sync leaves no torn object and running it again
finishes the job without recopying what is complete.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from .storage import Stat, Storage

__all__ = [
    "DEFAULT_JOBS",
    "Plan",
    "Reporter",
    "SyncResult",
    "exclude_matcher",
    "plan_sync",
    "sync",
]

log = logging.getLogger(__name__)

DEFAULT_JOBS = 16
#: Objects up to this size are copied in batches, in memory; larger ones are streamed.
SMALL = 1024 * 1024
BATCH = 32
RETRIES = 3
# S3 keeps whole seconds: a destination newer by less than this is "the same time".
MTIME_SLACK = 1.0
T = TypeVar("T")


class Reporter(Protocol):
    """Receives progress; the command line draws a bar or prints lines from it."""

    def start(self, objects: int, nbytes: int) -> None: ...

    def copied(self, key: str, nbytes: int) -> None: ...

    def deleted(self, key: str) -> None: ...

    def failed(self, key: str, error: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class Plan:
    """What a sync will do."""

    copy: list[tuple[str, Stat]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    skipped: int = 0

    @property
    def copy_bytes(self) -> int:
        return sum(st.size for _, st in self.copy)


@dataclass
class SyncResult:
    """What a sync did."""

    copied: int = 0
    skipped: int = 0
    deleted: int = 0
    bytes: int = 0
    seconds: float = 0.0
    #: key: error message, for every object that failed after retries.
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def plan_sync(
    src: Storage,
    dst: Storage,
    *,
    delete: bool = False,
    checksum: bool = False,
    exclude: Sequence[str] = (),
    jobs: int = DEFAULT_JOBS,
) -> Plan:
    """Compare the two storages and return the :class:`Plan`; changes nothing."""
    excluded = exclude_matcher(exclude)
    source = {k: st for k, st in src.scan() if not excluded(k)}
    target = {k: st for k, st in dst.scan() if not excluded(k)}
    plan = Plan()
    undecided: list[str] = []
    for key, st in source.items():
        other = target.get(key)
        if other is None or other.size != st.size:
            plan.copy.append((key, st))
        elif checksum:
            undecided.append(key)
        elif _newer(st, other):
            plan.copy.append((key, st))
        else:
            plan.skipped += 1
    if undecided:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            digests = pool.map(
                lambda k: (_md5(src, k, source[k]), _md5(dst, k, target[k])), undecided
            )
            for key, (a, b) in zip(undecided, digests, strict=True):
                if a != b:
                    plan.copy.append((key, source[key]))
                else:
                    plan.skipped += 1
        plan.copy.sort(key=lambda item: item[0])
    if delete:
        plan.delete = sorted(k for k in target if k not in source)
    return plan


def sync(
    src: Storage,
    dst: Storage,
    *,
    delete: bool = False,
    dry_run: bool = False,
    checksum: bool = False,
    exclude: Sequence[str] = (),
    jobs: int = DEFAULT_JOBS,
    reporter: Reporter | None = None,
) -> SyncResult:
    """Make ``dst`` hold what ``src`` holds; see the module docstring."""
    started = time.monotonic()
    plan = plan_sync(src, dst, delete=delete, checksum=checksum, exclude=exclude, jobs=jobs)
    result = SyncResult(skipped=plan.skipped)
    if dry_run:
        result.seconds = time.monotonic() - started
        return result
    report = reporter or _Silent()
    report.start(len(plan.copy) + len(plan.delete), plan.copy_bytes)
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            _copy_all(src, dst, plan.copy, pool, result, report)
            _delete_all(dst, plan.delete, pool, result, report)
    finally:
        report.close()
    result.seconds = time.monotonic() - started
    return result


def _copy_all(
    src: Storage,
    dst: Storage,
    items: list[tuple[str, Stat]],
    pool: ThreadPoolExecutor,
    result: SyncResult,
    report: Reporter,
) -> None:
    small = [item for item in items if item[1].size <= SMALL]
    large = [item for item in items if item[1].size > SMALL]
    futures = {
        pool.submit(_copy_batch, src, dst, small[i : i + BATCH]): small[i : i + BATCH]
        for i in range(0, len(small), BATCH)
    }
    futures.update({pool.submit(_copy_batch, src, dst, [item]): [item] for item in large})
    for future in as_completed(futures):
        for key, outcome in future.result():
            size = dict(futures[future])[key].size
            if outcome is None:
                result.copied += 1
                result.bytes += size
                report.copied(key, size)
            else:
                result.failed[key] = outcome
                report.failed(key, outcome)


def _copy_batch(
    src: Storage, dst: Storage, items: list[tuple[str, Stat]]
) -> list[tuple[str, str | None]]:
    """Copy the items; return (key, None) for each success and (key, error) for failures."""
    if len(items) > 1:
        try:
            data = _retry(lambda: src.read_many([k for k, _ in items]))
            _retry(lambda: dst.write_many(data))
        except Exception as exc:
            # Fall back to one object at a time, below, so one bad object fails alone.
            log.debug("batch of %d failed (%s); copying one by one", len(items), type(exc).__name__)
        else:
            for key, st in items:
                _keep_mtime(dst, key, st)
            return [(key, None) for key, _ in items]
    outcomes: list[tuple[str, str | None]] = []
    for key, st in items:
        try:
            _retry(_copier(src, dst, key, st))
        except Exception as exc:  # reported per object; the sync goes on
            outcomes.append((key, f"{type(exc).__name__}: {exc}"))
        else:
            outcomes.append((key, None))
    return outcomes


def _copier(src: Storage, dst: Storage, key: str, st: Stat) -> Callable[[], None]:
    return lambda: _copy_one(src, dst, key, st)


def _copy_one(src: Storage, dst: Storage, key: str, st: Stat) -> None:
    if st.size <= SMALL:
        dst.write_bytes(key, src.read_bytes(key))
    else:
        with src.open(key, "rb") as f:
            dst.save(key, f)
    _keep_mtime(dst, key, st)


def _keep_mtime(dst: Storage, key: str, st: Stat) -> None:
    # The copy takes the source's time where the backend can, so the next sync sees it as
    # up to date (an object store's upload time is later than the source's: the same).
    if st.mtime is not None:
        dst.backend.set_mtime(key, st.mtime)


def _delete_all(
    dst: Storage, keys: list[str], pool: ThreadPoolExecutor, result: SyncResult, report: Reporter
) -> None:
    futures = {pool.submit(_retry, _deleter(dst, k)): k for k in keys}
    for future in as_completed(futures):
        key = futures[future]
        try:
            future.result()
        except FileNotFoundError:
            pass  # already gone: the goal is reached
        except Exception as exc:  # reported per object
            result.failed[key] = f"{type(exc).__name__}: {exc}"
            report.failed(key, result.failed[key])
            continue
        result.deleted += 1
        report.deleted(key)


def _deleter(dst: Storage, key: str) -> Callable[[], None]:
    return lambda: dst.delete(key)


def _retry(fn: Callable[[], T], attempts: int = RETRIES) -> T:
    for attempt in range(attempts):
        try:
            return fn()
        except FileNotFoundError:
            raise  # gone at the source since it was listed: retrying will not help
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _newer(src: Stat, dst: Stat) -> bool:
    if src.mtime is None or dst.mtime is None:
        return False
    return src.mtime > dst.mtime + MTIME_SLACK


def _md5(storage: Storage, key: str, st: Stat) -> str:
    """The object's MD5, from its listing where the backend has it (an S3 ETag)."""
    return storage.backend.md5(key, st)


def exclude_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A test for keys that ``patterns`` exclude, matched as rsync's ``--exclude`` does.

    A pattern without ``/`` matches a name in any directory (``.DS_Store`` excludes
    ``photos/.DS_Store``); one with a leading or inner ``/`` is anchored at the root
    (``/tmp`` excludes ``tmp/x``, not ``a/tmp/x``). A trailing ``/`` matches directories
    only. A pattern that matches a directory excludes everything under it. ``*`` and
    ``?`` never match ``/``; ``**`` does (``**/`` also matches no directory at all);
    ``[abc]``, ``[!abc]`` and ``\\*`` (a literal ``*``) are as in the shell. An empty
    pattern is a :class:`ValueError`.
    """
    anywhere: list[tuple[re.Pattern[str], bool]] = []
    anchored: list[tuple[re.Pattern[str], bool]] = []
    for pattern in patterns:
        body = pattern.rstrip("/")
        directory = body != pattern
        rooted = body.startswith("/") or "/" in body
        body = body.lstrip("/")
        if not body:
            raise ValueError(f"exclude pattern {pattern!r} matches nothing or everything")
        (anchored if rooted else anywhere).append((_glob(body), directory))

    def excluded(key: str) -> bool:
        names = key.split("/")
        last = len(names) - 1
        for i, name in enumerate(names):
            # Directories are every component but the last; the key's own name is a file.
            if any(rx.fullmatch(name) and (i < last or not d) for rx, d in anywhere):
                return True
            if anchored:
                path = "/".join(names[: i + 1])
                if any(rx.fullmatch(path) and (i < last or not d) for rx, d in anchored):
                    return True
        return False

    return excluded


_GLOB = re.compile(r"\*\*/|\*\*|\*|\?|\[!?\]?[^]]*\]|\\.|.", re.DOTALL)
_WILDCARDS = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


def _glob(pattern: str) -> re.Pattern[str]:
    """A shell glob as a regular expression in which only ``**`` crosses ``/``."""
    parts = []
    for piece in _GLOB.findall(pattern):
        if piece in _WILDCARDS:
            parts.append(_WILDCARDS[piece])
        elif piece.startswith("[") and len(piece) > 2:
            negated = piece[1] == "!"
            chars = re.escape(piece[2:-1] if negated else piece[1:-1]).replace("\\-", "-")
            parts.append(f"[^/{chars}]" if negated else f"[{chars}]")
        elif piece.startswith("\\"):
            parts.append(re.escape(piece[1:] or piece))
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts), re.DOTALL)


class _Silent:
    def start(self, objects: int, nbytes: int) -> None:
        pass

    def copied(self, key: str, nbytes: int) -> None:
        pass

    def deleted(self, key: str) -> None:
        pass

    def failed(self, key: str, error: str) -> None:
        pass

    def close(self) -> None:
        pass
