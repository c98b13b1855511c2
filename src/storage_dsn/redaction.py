"""Keeping secrets out of what a program shows: messages, logs and tracebacks.

Every :class:`~storage_dsn.Storage` hands its secrets (:func:`storage_dsn.dsn.secret_values`)
to :func:`remember`. From then on:

* :func:`scrub` replaces each of them, in every encoding it travels in (as written,
  percent-encoded, ``quote_plus``, base64 at any alignment, JSON and ``repr`` escapes, each
  line of a multi-line key), by ``***``;
* :class:`SecretFilter` does so for log records (message, arguments, formatted exception);
  :func:`install_log_filter` applies it to every record of the loggers a storage's
  libraries write to (botocore's DEBUG lines carry the session token), and an application
  may add it to its own handlers;
* :func:`scrub_exception` makes an exception on its way out of the package safe to print:
  its messages scrubbed, and the local variables of the frames it passed through cleared
  (a library's frame holds the credentials, the signed request, the DSN), so a traceback
  formatted with ``capture_locals=True``, a debugger page or an error tracker finds none.

Nothing here knows a scheme; a secret is any string a scheme's config marks as one.
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import logging
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

__all__ = [
    "LOGGERS",
    "MASK",
    "Secret",
    "SecretFilter",
    "guarded",
    "install_log_filter",
    "remember",
    "scrub",
    "scrub_exception",
    "secret_forms",
]

MASK = "***"
#: The loggers whose records are scrubbed: this package's and those of the libraries the
#: storages drive (each with its children: ``botocore.endpoint``, ``azure.core...``).
LOGGERS = (
    "storage_dsn",
    "botocore",
    "aiobotocore",
    "boto3",
    "s3fs",
    "obstore",
    "urllib3",
    "requests",
    "aiohttp",
    "azure",
    "adlfs",
    "gcsfs",
    "google",
    "asyncssh",
    "sshfs",
    "fsspec",
    "asyncio",
)
# Shorter values are not masked: "***" in place of every "ab" would garble all output,
# and no real credential is that short.
_MIN_LENGTH = 4
# Shorter values are masked only where they stand alone, not inside a longer word.
_MIN_ANYWHERE = 8
# A base64 run this short could occur by chance; shorter cores are not masked.
_MIN_BASE64 = 8

_lock = threading.Lock()
_secrets: set[str] = set()
# The forms of every remembered secret, longest first (a form may contain a shorter one).
_forms: tuple[str, ...] = ()

F = TypeVar("F", bound=Callable[..., Any])


class Secret(str):
    """A ``str`` whose ``repr()`` is ``'***'``: a secret kept in a variable that a
    traceback or debugger would show. ``str()`` and every string operation still give
    the value (and plain ``str`` results)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


def secret_forms(secret: str) -> list[str]:
    """The ways ``secret`` appears in text: as written, percent-encoded (upper and lower
    case hex, ``/`` kept or not), ``quote_plus``, JSON and ``repr`` escaped, base64 and
    URL-safe base64 at each of the three alignments (a secret inside a longer encoded
    value, as in ``user:password``), and each long line of a multi-line secret."""
    if len(secret) < _MIN_LENGTH:
        return []
    # surrogatepass: a value from os.environ may hold undecodable bytes as surrogates.
    plus = quote_plus(secret, safe="", errors="surrogatepass")
    forms = {secret, plus, repr(secret)[1:-1]}
    if not (secret.isascii() and secret.isprintable()) or '"' in secret or "\\" in secret:
        import json  # only these differ JSON-escaped; the others need no json at start-up

        forms.add(json.dumps(secret)[1:-1])
    for safe in ("", "/"):
        encoded = quote(secret, safe=safe, errors="surrogatepass")
        forms.update({encoded, _lower_hex(encoded)})
    raw = secret.encode("utf-8", "surrogatepass")
    for core in _base64_cores(raw):
        forms.update({core, core.replace("+", "-").replace("/", "_")})
    for line in secret.splitlines():
        if line != secret and len(line.strip()) >= 16:
            forms.update(secret_forms(line.strip()))
    return sorted((f for f in forms if len(f) >= _MIN_LENGTH), key=len, reverse=True)


def _lower_hex(encoded: str) -> str:
    parts = encoded.split("%")
    return parts[0] + "".join(f"%{p[:2].lower()}{p[2:]}" for p in parts[1:])


def _base64_cores(raw: bytes) -> Iterator[str]:
    """The base64 characters that only ``raw``'s bits decide, for ``raw`` starting at byte
    offset 0, 1 and 2 of a longer encoded value."""
    for offset in range(3):
        data = bytes(offset) + raw + bytes(3)
        encoded = binascii.b2a_base64(data, newline=False).decode("ascii")
        start = -(-8 * offset // 6)  # the first character with no bit of the padding
        end = (8 * (offset + len(raw))) // 6
        core = encoded[start:end]
        if len(core) >= _MIN_BASE64:
            yield core


def remember(values: Iterable[str]) -> None:
    """Scrub these secrets from now on, in every form (see :func:`secret_forms`)."""
    global _forms
    new = {str(v) for v in values if v and len(str(v)) >= _MIN_LENGTH} - _secrets
    if not new:
        return
    with _lock:
        _secrets.update(new)
        forms = set(_forms)
        for secret in new:
            forms.update(secret_forms(secret))
        _forms = tuple(sorted(forms, key=len, reverse=True))


def _reset() -> None:
    """Forget every remembered secret (for tests)."""
    global _forms
    with _lock:
        _secrets.clear()
        _forms = ()


def scrub(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every remembered secret (and each of ``extra``), in every form,
    replaced by ``***``."""
    forms: Iterable[str] = _forms
    extra = list(extra)
    if extra:
        forms = sorted({*_forms, *(f for e in extra for f in secret_forms(e))}, key=len)[::-1]
    for form in forms:
        if form in text:
            text = _replace(text, form)
    return text


def _replace(text: str, form: str) -> str:
    if len(form) >= _MIN_ANYWHERE:
        return text.replace(form, MASK)
    # A short value ("anon", a dev password "pass") is masked where it stands alone, not
    # inside a word ("anonymous", "password"), which would garble the output.
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", MASK, text)


def _leaks(text: str) -> bool:
    return any(form in text and _replace(text, form) != text for form in _forms)


# -- logs ---------------------------------------------------------------------------------


class SecretFilter(logging.Filter):
    """A logging filter that lets every record through with the remembered secrets
    scrubbed: from its message and arguments (the record then carries the formatted,
    scrubbed message and no arguments) and from its exception and stack text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _forms:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it, we must not raise
            message = str(record.msg)
        if _leaks(message):
            record.msg, record.args = scrub(message), ()
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = scrub(text)
        elif record.exc_text and _leaks(record.exc_text):
            record.exc_text = scrub(record.exc_text)
        if record.stack_info and _leaks(record.stack_info):
            record.stack_info = scrub(record.stack_info)
        return True


_FILTER = SecretFilter()
_installed = False


def install_log_filter() -> None:
    """Scrub the records of :data:`LOGGERS` and their children, from now on.

    A filter on a logger sees only the records of that very logger, not its children's,
    and a library creates loggers as it imports its modules (botocore's on the first
    request): so the filter runs where every record is made, the log record factory,
    for the records of those loggers. The factory in place is kept and called first.
    The loggers themselves get the filter too, in case a later factory drops ours.
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()
    for name in LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _forms and record.name.partition(".")[0] in LOGGERS:
            _FILTER.filter(record)
        return record

    logging.setLogRecordFactory(factory)


# -- exceptions ---------------------------------------------------------------------------


def scrub_exception(exc: BaseException) -> None:
    """Make ``exc`` safe to print, with its causes and contexts: the remembered secrets
    scrubbed from their messages and notes, and the locals of every frame they left
    cleared (``traceback.clear_frames`` does the same for one traceback)."""
    for error in _chain(exc):
        if _forms:
            _scrub_message(error)
        _clear_left_frames(error.__traceback__)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        error = todo.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        todo += [e for e in (error.__cause__, error.__context__) if e is not None]
        todo += list(getattr(error, "exceptions", ()))


def _scrub_message(error: BaseException) -> None:
    try:
        error.args = tuple(_scrubbed(a) for a in error.args)
        # OSError's text is its attributes; SDK errors keep theirs in ``message`` too.
        for name in ("strerror", "filename", "filename2", "message"):
            value = getattr(error, name, None)
            if isinstance(value, str) and _leaks(value):
                setattr(error, name, scrub(value))
        notes = getattr(error, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [_scrubbed(n) for n in notes]
    except (AttributeError, TypeError):  # an exception class with read-only attributes
        pass


def _scrubbed(value: Any) -> Any:
    return scrub(value) if isinstance(value, str) and _leaks(value) else value


def _clear_left_frames(tb: TracebackType | None) -> None:
    """Clear the locals of every frame in ``tb`` but the first: those the exception
    propagated out of, all finished. The first is the frame that caught it, which may
    still run (or be a suspended generator, which clearing would close)."""
    if tb is None:
        return
    tb = tb.tb_next
    while tb is not None:
        with contextlib.suppress(RuntimeError):  # still executing: not one it left
            tb.tb_frame.clear()
        tb = tb.tb_next


def guarded(function: F) -> F:
    """``function``, whose exceptions leave through :func:`scrub_exception`, and whose
    own frame (holding its arguments: a DSN, a key) is left without them."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BaseException as exc:
            error = exc
        del args, kwargs  # raised below, this frame is in the traceback: keep no DSN in it
        scrub_exception(error)
        tb = error.__traceback__
        if tb is not None and tb.tb_frame is sys._getframe():
            error = error.with_traceback(tb.tb_next)  # raising adds this frame again
        raise error

    return wrapper  # type: ignore[return-value]
