"""Copy and sync objects between any two storages.

``sync(src, dst)`` makes ``dst`` hold what ``src`` holds. It reads both listings in key
order (a local tree is walked lazily; an object store's listing is sorted, since not every
S3 server lists in key order) and merges them, so a copy starts as soon as a difference is
known: nothing is planned whole before the first byte moves. It copies what is
missing, of another size, or newer at the source (``checksum=True``: of other content),
and with ``delete=True`` removes what the source lacks, once the source's listing is
complete and error-free.

``jobs`` is the number of requests in flight. Between two locations of one service and
account (two S3 prefixes or buckets behind one endpoint and key, two containers of one
Azure account, two GCS buckets of one project) objects are copied inside the service and
no byte passes through this process. Every write is atomic, so an interrupted sync leaves
no torn object and running it again finishes the job without recopying what is complete.
``shard=(i, n)`` restricts a run to the keys whose hash falls in part ``i`` of ``n``, so
``n`` workers that share nothing but the two storages split one migration.

Names the other side cannot hold are left alone and reported (``ignored``), neither
copied nor deleted: names other tools put in a bucket that are not valid keys (``a//b``,
``/a``), a key that is also the folder of other keys (``a`` beside ``a/b``) when the
destination keeps files in folders, a file name longer than the destination's file
system takes.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from .backend import DEFAULT_JOBS
from .errors import InvalidKeyError, StorageDSNError
from .storage import Stat, Storage

__all__ = [
    "DEFAULT_JOBS",
    "Change",
    "ListingError",
    "Plan",
    "Reporter",
    "SyncResult",
    "changes",
    "exclude_matcher",
    "in_shard",
    "parse_shard",
    "plan_sync",
    "sync",
]

log = logging.getLogger(__name__)

#: Objects up to this size are copied whole, in memory; larger ones are streamed.
SMALL = 1024 * 1024
RETRIES = 3
# S3 keeps whole seconds: a destination newer by less than this is "the same time".
MTIME_SLACK = 1.0
T = TypeVar("T")


class Reporter(Protocol):
    """Receives progress; the command line draws a bar or prints lines from it.

    ``start`` comes first, before the totals are known (the listings are still being
    read); ``planned`` gives them once the source has been listed to the end. A reporter
    with a true ``ordered`` attribute gets ``copied``, ``deleted`` and ``failed`` in key
    order (as each object's turn comes, which a large object can hold back); others get
    them as the objects finish.
    """

    def start(self, objects: int | None, nbytes: int | None) -> None: ...

    def planned(self, objects: int, nbytes: int) -> None: ...

    def copied(self, key: str, nbytes: int) -> None: ...

    def deleted(self, key: str) -> None: ...

    def failed(self, key: str, error: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Change:
    """One difference between the two sides: copy ``key`` (whose source :class:`Stat` is
    ``stat``) or delete it from the destination."""

    action: Literal["copy", "delete"]
    key: str
    stat: Stat | None = None


@dataclass
class Plan:
    """What a sync will do (:func:`plan_sync`: the changes collected in a list)."""

    copy: list[tuple[str, Stat]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    skipped: int = 0
    #: Listing errors: while there are any, the plan is incomplete and deletes nothing.
    errors: list[str] = field(default_factory=list)
    #: name: why it is left alone, neither copied nor deleted (see the module docstring).
    ignored: dict[str, str] = field(default_factory=dict)

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
    #: name: why it was left alone (:attr:`Plan.ignored`); not a failure.
    ignored: dict[str, str] = field(default_factory=dict)
    #: Failures that are no one object's, one line each: a listing that failed, after
    #: which nothing was deleted.
    errors: list[str] = field(default_factory=list)
    #: Objects copied inside the service (no byte through this process).
    server_side: int = 0
    #: Seconds from the start to the first object stored (None: nothing copied).
    first_copy: float | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors


class ListingError(OSError):
    """A listing broke off, or came out of order: the sync cannot know what is missing
    (and so deletes nothing)."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (``0 <= I < N``) as ``(I, N)``; :class:`ValueError` with the rule else."""
    index, sep, count = text.partition("/")
    if sep and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count):
        return int(index), int(count)
    raise ValueError(f"a shard is I/N with 0 <= I < N (e.g. 0/4 ... 3/4), not {text!r}")


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``key`` belongs to part ``I`` of ``N``: its SHA-1's first 8 bytes modulo N.
    The same on every machine and Python version, so N workers split keys exactly."""
    if shard is None:
        return True
    index, count = shard
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % count == index


def changes(
    src: Storage,
    dst: Storage,
    *,
    delete: bool = False,
    checksum: bool = False,
    exclude: Sequence[str] = (),
    shard: tuple[int, int] | None = None,
    skipped: Callable[[str], None] | None = None,
    ignored: Callable[[str, str], None] | None = None,
) -> Iterator[Change]:
    """The differences between the two storages, as the merged listings reveal them.

    A generator over two sorted listing streams: it holds one listing page of each side,
    not the trees. Deletes come last, and only once the source was listed completely
    (a broken or unordered listing raises :class:`ListingError`). With ``checksum``,
    objects of equal size are compared by content (an S3 ETag where the listing has one)
    before they are declared the same. ``skipped(key)`` is called for each key that is
    up to date, ``ignored(name, reason)`` for each name left alone (see the module
    docstring).
    """
    excluded = exclude_matcher(exclude)

    def mine(name: str) -> bool:
        return not excluded(name) and in_shard(name, shard)

    def ignore(name: str, reason: str) -> None:
        if ignored is not None and mine(name):
            ignored(name, reason)

    def odd_source(name: str, reason: str) -> None:
        ignore(name, f"not a valid key: {reason}")

    def odd_target(name: str, reason: str) -> None:
        if delete:
            ignore(name, f"not deleted, not a valid key: {reason}")

    to_delete: list[str] = []
    source = _ordered(src.scan(invalid=odd_source), "source", src)
    folders: set[str] = set()
    if dst.backend.directories:
        source = _folders_marked(source, folders)
    target = _ordered(dst.scan(invalid=odd_target), "destination", dst)
    for key, a, b in _merge(source, target):
        if not mine(key):
            continue
        if a is None:
            if delete:
                to_delete.append(key)
            continue
        unfit = _unfit(dst, key, folders)
        if unfit is not None:
            ignore(key, unfit)
        elif (
            b is None
            or a.size != b.size
            or (not checksum and _newer(a, b))
            or (checksum and _md5(src, key, a) != _md5(dst, key, b))
        ):
            yield Change("copy", key, a)
        elif skipped is not None:
            skipped(key)
    for key in to_delete:
        yield Change("delete", key)


def plan_sync(
    src: Storage,
    dst: Storage,
    *,
    delete: bool = False,
    checksum: bool = False,
    exclude: Sequence[str] = (),
    jobs: int = DEFAULT_JOBS,
    shard: tuple[int, int] | None = None,
) -> Plan:
    """Compare the two storages and return the :class:`Plan`; changes nothing.

    It holds every change in memory: for a large tree iterate :func:`changes` instead.
    A listing that breaks off leaves the plan incomplete, with the reason in ``errors``
    and no deletes.
    """
    del jobs  # the comparison is one pass over the two listings
    plan = Plan()

    def skip(_key: str) -> None:
        plan.skipped += 1

    try:
        for change in changes(
            src,
            dst,
            delete=delete,
            checksum=checksum,
            exclude=exclude,
            shard=shard,
            skipped=skip,
            ignored=plan.ignored.__setitem__,
        ):
            if change.action == "copy":
                assert change.stat is not None
                plan.copy.append((change.key, change.stat))
            else:
                plan.delete.append(change.key)
    except ListingError as exc:
        plan.errors.append(str(exc))
        plan.delete.clear()
    return plan


def _folders_marked(
    items: Iterator[tuple[str, Stat]], folders: set[str]
) -> Iterator[tuple[str, Stat]]:
    """``items`` (in key order), each key that is also the folder of others (``a`` beside
    ``a/b``) added to ``folders`` as it is yielded (the consumer takes it out): the keys
    between ``a`` and ``a/`` (``a-b``, ``a.txt``) are read ahead, never more."""
    ahead: deque[tuple[str, Stat]] = deque()
    for item in items:
        ahead.append(item)
        while len(ahead) > 1:
            key = ahead[0][0]
            mark = key + "/"
            decided = None
            for later, _ in itertools.islice(ahead, 1, None):
                if later.startswith(mark):
                    decided = True
                    break
                if not (later.startswith(key) and later < mark):
                    decided = False
                    break
            if decided is None:
                break  # read more before deciding
            if decided:
                folders.add(key)
            yield ahead.popleft()
    yield from ahead


def _unfit(dst: Storage, key: str, folders: set[str]) -> str | None:
    """Why ``dst`` cannot hold ``key`` as a file, or None."""
    if key in folders:
        folders.discard(key)
        # Both cannot be; the folder's keys are kept: a bare "a" beside "a/..." is most
        # often a folder marker another tool wrote without its slash.
        return (
            f"also the folder of other keys ({key}/...), and the destination keeps files "
            "in folders: the keys under it are copied, this one cannot be"
        )
    try:
        dst.backend.check_key(key)
    except InvalidKeyError as exc:
        return str(exc)
    return None


def sync(
    src: Storage,
    dst: Storage,
    *,
    delete: bool = False,
    dry_run: bool = False,
    checksum: bool = False,
    exclude: Sequence[str] = (),
    jobs: int = DEFAULT_JOBS,
    shard: tuple[int, int] | None = None,
    reporter: Reporter | None = None,
) -> SyncResult:
    """Make ``dst`` hold what ``src`` holds; see the module docstring.

    With ``dry_run`` nothing is changed and the result counts what would be copied
    (``copied``, ``bytes``) and deleted.
    """
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    for side in (src, dst):  # one request at a time on a single blocking connection
        limit = side.backend.concurrency()
        if limit is not None:
            jobs = min(jobs, limit)
    started = time.monotonic()
    result = SyncResult()
    report = reporter or _Silent()
    run = _Run(src, dst, result, report, started, dry_run=dry_run)

    def skip(_key: str) -> None:
        result.skipped += 1

    stream = changes(
        src,
        dst,
        delete=delete,
        checksum=checksum,
        exclude=exclude,
        shard=shard,
        skipped=skip,
        ignored=result.ignored.__setitem__,
    )
    report.start(None, None)
    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="storage-dsn-sync") as pool:
            pending: set[Future[None]] = set()
            deletes: list[str] = []
            listed_objects = listed_bytes = 0
            try:
                for change in stream:
                    if change.action == "delete":
                        deletes.append(change.key)
                        continue
                    assert change.stat is not None
                    listed_objects += 1
                    listed_bytes += change.stat.size
                    if len(pending) >= jobs:  # at most ``jobs`` requests in flight
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        _raise_unexpected(done)
                    pending.add(pool.submit(run.copy, run.ticket(), change.key, change.stat))
            except ListingError as exc:
                result.errors.append(str(exc))
                deletes = []  # what the source lacks is unknown: delete nothing
            report.planned(listed_objects + len(deletes), listed_bytes)
            done, _ = wait(pending)
            _raise_unexpected(done)
            if deletes and result.failed:
                # A copy failed: keep the destination's extra objects for the next run.
                log.info("not deleting %d objects: some copies failed", len(deletes))
            elif deletes:
                done, _ = wait([pool.submit(run.delete, run.ticket(), key) for key in deletes])
                _raise_unexpected(done)
    finally:
        report.close()
    result.seconds = time.monotonic() - started
    return result


class _Run:
    """One sync's workers: copy or delete one key, count it, report it."""

    def __init__(
        self,
        src: Storage,
        dst: Storage,
        result: SyncResult,
        report: Reporter,
        started: float,
        *,
        dry_run: bool,
    ) -> None:
        self.src, self.dst = src, dst
        self.result, self.report = result, report
        self.started = started
        self.dry_run = dry_run
        self.lock = threading.Lock()
        self.server_copy = None if dry_run else _server_copier(src, dst)
        self.ordered = bool(getattr(report, "ordered", False))
        self._tickets = 0
        self._turn = 0
        self._waiting: dict[int, Callable[[], None]] = {}

    def ticket(self) -> int:
        """The next object's place in key order (taken by the listing thread)."""
        self._tickets += 1
        return self._tickets - 1

    def _tell(self, ticket: int, event: Callable[[], None]) -> None:
        """Report ``event`` now, or, for an ordered reporter, when its turn comes."""
        if not self.ordered:
            event()
            return
        with self.lock:
            self._waiting[ticket] = event
            while self._turn in self._waiting:
                self._waiting.pop(self._turn)()
                self._turn += 1

    def copy(self, ticket: int, key: str, st: Stat) -> None:
        try:
            inside = False if self.dry_run else _retry(lambda: self._copy_one(key, st))
        except Exception as exc:  # reported per object; the sync goes on
            message = _describe(exc)
            with self.lock:
                self.result.failed[key] = message
            self._tell(ticket, lambda: self.report.failed(key, message))
            return
        with self.lock:
            self.result.copied += 1
            self.result.bytes += st.size
            self.result.server_side += inside
            if self.result.first_copy is None:
                self.result.first_copy = time.monotonic() - self.started
        self._tell(ticket, lambda: self.report.copied(key, st.size))

    def _copy_one(self, key: str, st: Stat) -> bool:
        """Copy ``key``; True when it was copied inside the service."""
        if self.server_copy is not None:
            self.server_copy(key)
            return True
        if st.size <= SMALL:
            self.dst.write_bytes(key, self.src.read_bytes(key))
        else:
            with self.src.open(key, "rb") as f:
                self.dst.save(key, f)
        if st.mtime is not None:
            # The copy takes the source's time where the backend can, so the next sync
            # sees it as up to date (an object store's upload time is later: the same).
            self.dst._set_mtime(key, st.mtime)
        return False

    def delete(self, ticket: int, key: str) -> None:
        if not self.dry_run:
            try:
                _retry(lambda: self.dst.delete(key))
            except FileNotFoundError:
                pass  # already gone: the goal is reached
            except Exception as exc:  # reported per object
                message = _describe(exc)
                with self.lock:
                    self.result.failed[key] = message
                self._tell(ticket, lambda: self.report.failed(key, message))
                return
        with self.lock:
            self.result.deleted += 1
        self._tell(ticket, lambda: self.report.deleted(key))


def _server_copier(src: Storage, dst: Storage) -> Callable[[str], None] | None:
    """A function copying one key from ``src`` to ``dst`` inside the service, when the two
    are one service and account (``Backend.server_copy``); None otherwise."""
    copy = dst.backend.server_copy(src.backend)
    if copy is None:
        return None

    def copy_key(key: str) -> None:
        src._checked(key)
        dst._checked(key)
        copy(key)

    return copy_key


def _raise_unexpected(done: Iterable[Future[None]]) -> None:
    # Workers report their own failures; anything escaping them is a bug to surface.
    for future in done:
        future.result()


def _merge(
    a: Iterator[tuple[str, Stat]], b: Iterator[tuple[str, Stat]]
) -> Iterator[tuple[str, Stat | None, Stat | None]]:
    """Merge two key-ordered listings into (key, stat in a, stat in b) triples."""
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            assert x is not None
            yield x[0], x[1], None
            x = next(a, None)
        elif x is None or y[0] < x[0]:
            yield y[0], None, y[1]
            y = next(b, None)
        else:
            yield x[0], x[1], y[1]
            x, y = next(a, None), next(b, None)


def _ordered(
    items: Iterator[tuple[str, Stat]], side: str, storage: Storage
) -> Iterator[tuple[str, Stat]]:
    """``items``, checked to be in strictly increasing key order (the merge relies on it:
    an unordered listing would read as missing objects, and deletes), with a listing that
    breaks off raised as :class:`ListingError`."""
    previous: str | None = None
    try:
        for key, st in items:
            if previous is not None and key <= previous:
                raise ListingError(
                    f"the {side} listing is not in key order ({key!r} after {previous!r}) "
                    f"on {storage.config.redacted()}"
                )
            previous = key
            yield key, st
    except ListingError:
        raise
    except Exception as exc:
        after = f" (after {previous!r})" if previous is not None else ""
        raise ListingError(f"listing the {side}: {_describe(exc)}{after}") from exc


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _retry(fn: Callable[[], T], attempts: int = RETRIES) -> T:
    # The backends retry requests themselves; this retries a whole object whose copy
    # failed half-way (a body that broke off, a short read detected at the end).
    for attempt in range(attempts):
        try:
            return fn()
        except (FileNotFoundError, StorageDSNError):
            raise  # gone at the source since it was listed, or a key it cannot hold
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
    return storage._md5(key, st)


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
    def start(self, objects: int | None, nbytes: int | None) -> None:
        pass

    def planned(self, objects: int, nbytes: int) -> None:
        pass

    def copied(self, key: str, nbytes: int) -> None:
        pass

    def deleted(self, key: str) -> None:
        pass

    def failed(self, key: str, error: str) -> None:
        pass

    def close(self) -> None:
        pass
