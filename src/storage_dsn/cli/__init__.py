"""The ``storage-dsn`` command (also ``python -m storage_dsn``).

Each storage argument is a DSN, the name of an environment variable holding one
(``DEFAULT_STORAGE_DSN``), or a local path (``./data/media`` means ``file:./data/media/``).
Exit codes: 0 done, 1 some objects or steps failed (listed), 2 usage or DSN error. No
secret is ever printed: configs print redacted, and every line of output is scrubbed of
the secrets of the storages in use.

This module parses the arguments and runs a command; :mod:`.commands` holds the commands
and :mod:`.output` what they print. The larger commands (``sync``, ``update-metadata``)
are in modules of their own, imported only when they run: every other
command starts without the sync engine's import.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any, NoReturn

from .. import __version__
from ..backend import DEFAULT_JOBS
from ..dsn import redact_dsn
from ..errors import StorageDSNError
from ..registry import parse_dsn
from ..storage import DEFAULT_ENV
from . import commands
from .commands import UsageError, resolve_dsn
from .completion import SHELLS, script
from .output import Output, one_line, printable, redact_dsns

__all__ = ["main", "resolve_dsn", "run"]

Command = Callable[[argparse.Namespace, Mapping[str, str], Output], int]

# Anything that starts like a URL ("s3:", "az+http:") may carry a secret.
_LOOKS_LIKE_DSN = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*:")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Run the command line; return the exit code."""
    args = _parse_args(list(sys.argv[1:] if argv is None else argv))
    out = Output(sys.stdout, sys.stderr)
    try:
        return int(args.func(args, environ, out))
    except (StorageDSNError, UsageError) as exc:
        out.error(str(exc))
        return 2
    except KeyboardInterrupt:
        out.error("interrupted; run the command again to finish (nothing is left half-written)")
        return 1
    except Exception as exc:  # a backend down or refusing: one line, never a traceback
        out.error(one_line(exc))
        return 1


def run() -> int:
    """The ``storage-dsn`` program: :func:`main` on ``sys.argv``, then a quick exit.

    The interpreter's last garbage collections walk every object that importing made,
    which takes as long as a small ``cat`` (10 to 15 ms). The process is ending and
    everything is flushed and closed, so they are skipped: whatever they would free,
    the exit frees.
    """
    code = main()
    gc.freeze()
    return code


def _parse_args(argv: list[str]) -> argparse.Namespace:
    """The parsed arguments; what argparse prints (usage errors quote arguments) shows
    every argument that is or looks like a DSN redacted, however argparse quoted it."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            return _parser().parse_args(argv)
    finally:
        text = printed.getvalue()
        if text:  # usage, an error or help: arguments may be quoted in it
            sys.stderr.write(_hide_dsns(text, argv))


def _hide_dsns(text: str, argv: list[str]) -> str:
    for arg in sorted(set(argv), key=len, reverse=True):
        if _LOOKS_LIKE_DSN.match(arg) or "@" in arg:
            hidden = _hidden(arg)
            for shown, instead in ((repr(arg), repr(hidden)), (arg, hidden)):
                text = text.replace(shown, instead)
                text = text.replace(printable(shown), printable(instead))
    return redact_dsns(text)


def _hidden(arg: str) -> str:
    """A DSN redacted; anything else that looks like one, all but its scheme (what is
    not a valid DSN cannot be told apart reliably: a secret pasted unencoded)."""
    try:
        parse_dsn(arg)
    except StorageDSNError:
        scheme = arg.strip().partition(":")[0] if _LOOKS_LIKE_DSN.match(arg) else ""
        return f"{scheme}:***" if scheme else "***"
    return redact_dsn(arg)


def _columns() -> int:
    """``shutil.get_terminal_size()``'s columns (``COLUMNS``, else the terminal's, else 80),
    without importing shutil and the compression modules it brings at every start."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout, as wide as the terminal less 2, as argparse's own."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors show no control character raw (an argument's newline
    would fake a line). DSNs in them are redacted by :func:`_parse_args`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)  # the subcommands' parsers too
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {printable(message)}\n")


def _later(module: str, name: str) -> Command:
    """The command ``name`` of this package's ``module``, imported when it runs."""

    def run(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
        command: Command = getattr(import_module(module, __name__), name)
        return command(args, environ, out)

    return run


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="storage-dsn",
        description="Check storage DSNs, and list, copy and sync media between storages. "
        "A storage is a DSN, the name of an environment variable holding one, or a path.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="parse a DSN and show what it means")
    p.add_argument("dsn", nargs="?", help=f"DSN, variable or path (default: ${DEFAULT_ENV})")
    p.add_argument("--connect", action="store_true", help="prove write, read and delete")
    p.add_argument("--json", action="store_true", help="the report as one JSON object")
    p.add_argument(
        "--public", action="store_true", help="store a probe and fetch its URL as a browser would"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="with --connect: remove temporary files killed writers left (older than 1 h)",
    )
    p.set_defaults(func=commands.cmd_check)

    p = sub.add_parser("ls", help="list keys")
    p.add_argument("dsn")
    p.add_argument("prefix", nargs="?", default="")
    p.add_argument("-l", "--long", action="store_true", help="with size and modification time")
    p.add_argument("--bytes", action="store_true", help="with --long: sizes in bytes")
    p.add_argument("--json", action="store_true", help="one JSON object per key (JSON Lines)")
    p.set_defaults(func=commands.cmd_ls)

    p = sub.add_parser("url", help="print a key's public (or presigned) URL")
    p.add_argument("dsn")
    p.add_argument("key")
    p.add_argument("--expires", type=int, help="presigned URL lifetime in seconds")
    p.set_defaults(func=commands.cmd_url)

    p = sub.add_parser("cat", help="write a key's content to standard output")
    p.add_argument("dsn")
    p.add_argument("key")
    p.set_defaults(func=commands.cmd_cat)

    p = sub.add_parser("put", help="store a file (or standard input, '-') under a key")
    p.add_argument("dsn")
    p.add_argument("key")
    p.add_argument("file")
    p.set_defaults(func=commands.cmd_put)

    p = sub.add_parser("rm", help="delete keys (with -r: every key under prefixes)")
    p.add_argument("dsn")
    p.add_argument("keys", nargs="+", metavar="key")
    p.add_argument("-r", "--recursive", action="store_true", help="keys are prefixes")
    p.add_argument("-y", "--yes", action="store_true", help="delete without asking")
    p.set_defaults(func=commands.cmd_rm)

    p = sub.add_parser(
        "update-metadata",
        help="re-apply the DSN's upload settings and content types to stored objects",
    )
    p.add_argument("dsn")
    p.add_argument("prefix", nargs="?", default="")
    p.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    p.set_defaults(func=_later(".metadata", "cmd_update_metadata"))

    p = sub.add_parser("sync", help="make DST hold what SRC holds")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--delete", action="store_true", help="delete keys SRC does not have")
    p.add_argument("--checksum", action="store_true", help="compare content, not size/time")
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="skip matching keys, as rsync: NAME anywhere, /PATH from the root, DIR/ (repeatable)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        help=f"requests in flight (default {DEFAULT_JOBS})",
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="only the keys of part I of N (0 <= I < N), by a hash of the key: "
        "N workers split one sync",
    )
    p.add_argument("--json", action="store_true", help="no progress; the summary as JSON")
    p.set_defaults(func=_later(".sync", "cmd_sync"))

    p = sub.add_parser("completion", help="print a shell completion script")
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=_cmd_completion)
    return parser


def _cmd_completion(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    out.stdout.write(script(args.shell, _parser()))
    return 0
