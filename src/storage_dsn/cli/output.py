"""What the command line prints: scrubbed lines, progress, sizes and times.

Every line goes through :class:`Output`, which replaces each secret of the storages in
use (as written and percent-encoded) by ``***`` before it is printed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import IO, Any

from ..dsn import redact_dsn
from ..redaction import remember
from ..redaction import scrub as scrub_secrets

__all__ = [
    "BarProgress",
    "LineProgress",
    "Output",
    "iso",
    "iso_json",
    "one_line",
    "printable",
    "progress",
    "redact_dsns",
    "size",
]

# C0 and C1 controls and DEL: a raw newline in a listed name would fake a line of output,
# an escape sequence would drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Anything shaped like a DSN with an authority: scheme://...
_DSN_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\n``, ``\\x1b``)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def redact_dsns(text: str) -> str:
    """``text`` with every DSN in it redacted (argparse quotes bad arguments in errors)."""
    return _DSN_LIKE.sub(lambda m: redact_dsn(m.group()), text)


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message, bounded."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if len(first) > 300:
        first = first[:297] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class Output:
    """stdout/stderr writer that scrubs every known secret from what it prints."""

    def __init__(self, stdout: IO[str], stderr: IO[str]) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def hide(self, values: Iterable[str]) -> None:
        """Scrub these values from everything printed from now on (and from the
        package's messages and logs: they are the secrets of a storage in use)."""
        remember(values)

    def scrub(self, text: str) -> str:
        """``text`` with every secret of the storages in use, in each encoding it travels
        in (:func:`storage_dsn.redaction.secret_forms`), replaced by ``***``, every DSN in
        it redacted and every control character escaped."""
        return printable(redact_dsns(scrub_secrets(text)))

    def line(self, text: str, *, scrub: bool = True) -> None:
        """Print a line on stdout."""
        # A presigned URL carries a signature, not the secret; it is the one thing not
        # scrubbed (scrubbing could not hurt it, but makes the intent plain).
        print(self.scrub(text) if scrub else printable(text), file=self.stdout, flush=True)

    def json(self, value: object) -> None:
        """Print ``value`` as one line of JSON, scrubbed like any line.

        Everything outside ASCII is escaped, so no control character reaches the terminal
        raw and the line stays valid JSON after scrubbing.
        """
        import json

        self.line(json.dumps(value, ensure_ascii=True))

    def error(self, text: str) -> None:
        """Print ``storage-dsn: error: ...`` on stderr."""
        print(f"storage-dsn: error: {self.scrub(text)}", file=self.stderr, flush=True)

    def confirm(self, question: str, answers: IO[str] | None = None) -> bool:
        """Ask ``question [y/N]`` on stderr; ``True`` when the answer (from standard input)
        is yes."""
        print(f"{self.scrub(question)} [y/N] ", end="", file=self.stderr, flush=True)
        answer = (answers or sys.stdin).readline()
        return answer.strip().lower() in ("y", "yes")

    def warning(self, text: str) -> None:
        """Print ``storage-dsn: warning: ...`` on stderr: worth reading, not a failure."""
        print(f"storage-dsn: warning: {self.scrub(text)}", file=self.stderr, flush=True)


class LineProgress:
    """Plain lines, for logs and pipes: one per object, in key order, then the summary."""

    ordered = True

    def __init__(self, out: Output) -> None:
        self.out = out

    def start(self, objects: int | None, nbytes: int | None) -> None:
        pass

    def planned(self, objects: int, nbytes: int) -> None:
        pass  # the copies are under way: their lines and the summary say it

    def copied(self, key: str, nbytes: int) -> None:
        self.out.line(f"copied  {key} ({size(nbytes)})")

    def deleted(self, key: str) -> None:
        self.out.line(f"deleted {key}")

    def failed(self, key: str, error: str) -> None:
        self.out.error(f"failed: {key}: {error}")

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm progress bar (bytes, objects, rate, ETA) on a terminal."""

    def __init__(self, out: Output, tqdm: Any) -> None:
        self.out = out
        self._tqdm = tqdm
        self.bar: Any = None
        self.objects = 0
        self.total_objects: int | None = None

    def start(self, objects: int | None, nbytes: int | None) -> None:
        # The totals come with planned(), once the source is listed; until then the bar
        # shows what is done and the rate.
        self.total_objects = objects
        # tqdm's own byte counts say "MB" for mebibytes: the sizes are ours, in the
        # description, so the bar speaks the same units as every other line.
        self.bar = self._tqdm(
            total=nbytes,
            file=self.out.stderr,
            bar_format="sync {percentage:3.0f}%|{bar}| {desc} [{elapsed}<{remaining}]",
            dynamic_ncols=True,
        )
        self._describe(0)

    def _describe(self, done: int) -> None:
        elapsed = self.bar.format_dict["elapsed"]
        rate = done / elapsed if elapsed > 0 else 0
        # Until the source is listed to its end the totals are unknown: done so far only.
        total = "" if self.bar.total is None else f"/{size(self.bar.total)}"
        objects = "" if self.total_objects is None else f"/{self.total_objects}"
        self.bar.set_description_str(
            f"{size(done)}{total}, {size(rate)}/s, {self.objects}{objects} objects",
            refresh=False,
        )

    def planned(self, objects: int, nbytes: int) -> None:
        self.total_objects = objects
        self.bar.total = nbytes
        self.bar.refresh()

    def _step(self, nbytes: int) -> None:
        self.objects += 1
        self._describe(self.bar.n + nbytes)
        self.bar.update(nbytes)  # draws, at most every tenth of a second

    def copied(self, key: str, nbytes: int) -> None:
        self._step(nbytes)

    def deleted(self, key: str) -> None:
        self._step(0)

    def failed(self, key: str, error: str) -> None:
        self.bar.write(self.out.scrub(f"failed: {key}: {error}"), file=self.out.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress(out: Output) -> LineProgress | BarProgress:
    """A bar on a terminal (with the ``cli`` extra), plain lines otherwise."""
    if out.stderr.isatty():
        try:
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            out.error('no progress bar without tqdm: pip install "storage-dsn[cli]"')
        else:
            return BarProgress(out, tqdm)
    return LineProgress(out)


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size(n: float) -> str:
    """``n`` bytes in binary units, the one unit system of every line the command prints:
    ``512 B``, ``1.5 KiB``, ``2.0 GiB``."""
    value = float(n)
    for unit in _UNITS:
        # Switch up before rounding would show 1024.0 of the smaller unit.
        if unit == "B" and value < 1024:
            return f"{value:.0f} B"
        if unit != "B" and (round(value, 1) < 1024 or unit == _UNITS[-1]):
            return f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def iso_json(mtime: float | None) -> str | None:
    """A modification time as ISO 8601 with its UTC offset, for JSON; ``None`` when
    unknown."""
    if mtime is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(mtime, timezone.utc).isoformat()


def iso(mtime: float | None) -> str:
    """A modification time as ``YYYY-MM-DDTHH:MM:SS`` (UTC), dashes when unknown."""
    if mtime is None:
        return "-" * 19
    from datetime import datetime, timezone

    return datetime.fromtimestamp(mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
