"""The ``storage-dsn`` command (also ``python -m storage_dsn``).

Each storage argument is a DSN, the name of an environment variable holding one
(``DEFAULT_STORAGE_DSN``), or a local path (``./data/media`` means ``file:./data/media/``).
Exit codes: 0 done, 1 some objects or steps failed (listed), 2 usage or DSN error. No
secret is ever printed: configs print redacted, and every line of output is scrubbed of
the secrets of the storages in use.

This module parses the arguments and runs a command; :mod:`.commands` holds the commands
and :mod:`.output` what they print.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from .. import __version__
from ..errors import StorageDSNError
from ..storage import DEFAULT_ENV
from ..sync import DEFAULT_JOBS
from . import commands
from .commands import UsageError, resolve_dsn
from .completion import SHELLS, script
from .output import Output, one_line, printable, redact_dsns

__all__ = ["main", "resolve_dsn"]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
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


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors never show a DSN's secret.

    argparse quotes the offending argument in its message ("invalid choice: 's3://...'"),
    and a DSN given in the wrong place would be printed whole.
    """

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {printable(redact_dsns(message))}\n")


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
    p.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help=f"default {DEFAULT_JOBS}")
    p.add_argument("--json", action="store_true", help="no progress; the summary as JSON")
    p.set_defaults(func=commands.cmd_sync)

    p = sub.add_parser("completion", help="print a shell completion script")
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=_cmd_completion)
    return parser


def _cmd_completion(args: argparse.Namespace, environ: Mapping[str, str], out: Output) -> int:
    out.stdout.write(script(args.shell, _parser()))
    return 0
