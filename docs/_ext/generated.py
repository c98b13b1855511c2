"""Generated regions of the Markdown pages: written into the page, checked for staleness.

Every page but the API reference reads complete as plain Markdown (on a code host, in an
editor): what the code knows (parameter tables, what ``check`` prints for an example DSN,
the error a bad DSN gets) and the example app's files are written into the page between
markers, not produced at build time::

    <!-- generated: dsn-params s3 -->
    ...
    <!-- end generated -->

A region's kind and arguments follow ``generated:``; an argument may continue on the next
lines of the comment (the DSNs of ``dsn-example`` and ``dsn-error``). Kinds:

``dsn-params SCHEME`` (or ``common``)
    The parameter table (see :mod:`dsnref`).
``dsn-example`` / ``dsn-error [missing=MODULE]``
    For each DSN on the following lines: ``check``'s report and the URL of a sample key /
    the error ``open_storage`` raises.
``include PATH [LANGUAGE] [lines=A-B]``
    The file at ``PATH`` (relative to the page) in a fenced block; ``markdown`` as the
    language inlines it, headings one level down and relative links rebased.

Regenerate after changing the code or the example app::

    python docs/_ext/generated.py          # rewrite stale regions
    python docs/_ext/generated.py --check  # list stale pages, exit 1 (tests/test_docs.py)

The Sphinx build runs the check too: a stale page fails it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent
ROOT = DOCS.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

REGION = re.compile(
    r"(?P<open><!-- generated: (?P<spec>.*?)-->\n)(?P<body>.*?)(?P<close><!-- end generated -->)",
    re.DOTALL,
)
_LINK = re.compile(r"(\]\()(?!https?:|#|/)([^)]+\))")


def pages() -> list[Path]:
    """Every Markdown page that may hold regions: the docs and the README."""
    return [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]


def render(spec: str, page: Path) -> str:
    """The body of a region whose opening comment says ``spec``."""
    first, _, rest = spec.partition("\n")
    kind, *args = first.split()
    lines = [line.strip() for line in rest.splitlines() if line.strip()]
    if kind == "include":
        return _include(page, *args)
    import dsnref  # needs storage_dsn; imported late so --help works without it

    makers: dict[str, Callable[..., str]] = {
        "dsn-params": lambda: dsnref.params_markdown(args[0]),
        "dsn-example": lambda: dsnref.examples_markdown(lines),
        "dsn-error": lambda: dsnref.errors_markdown(lines, **_options(args)),
    }
    if kind not in makers:
        raise ValueError(f"{page.name}: unknown generated region {kind!r}")
    return makers[kind]()


def _options(args: Iterable[str]) -> dict[str, str]:
    return dict(arg.split("=", 1) for arg in args)


def _include(page: Path, path: str, language: str = "text", *args: str) -> str:
    source = (page.parent / path).resolve()
    text = source.read_text(encoding="utf-8")
    lines = _options(args).get("lines")
    if lines:
        start, _, end = lines.partition("-")
        text = "".join(text.splitlines(keepends=True)[int(start) - 1 : int(end)])
    if language == "markdown":
        base = Path(path).parent.as_posix()
        text = re.sub(r"^#", "##", text, flags=re.MULTILINE)
        return _LINK.sub(lambda m: f"{m.group(1)}{base}/{m.group(2)}", text).rstrip() + "\n"
    return f"```{language}\n{text.rstrip()}\n```\n"


def refresh(page: Path) -> tuple[str, str]:
    """The page's text, and the text with every region regenerated."""
    text = page.read_text(encoding="utf-8")

    def one(match: re.Match[str]) -> str:
        body = render(match.group("spec"), page)
        return f"{match.group('open')}{body}{match.group('close')}"

    return text, REGION.sub(one, text)


def stale() -> list[Path]:
    """Pages whose regions differ from what the code and files give now."""
    return [page for page in pages() if len(set(refresh(page))) == 2]


def main(argv: list[str]) -> int:
    if argv not in ([], ["--check"]):
        print(__doc__)
        return 2
    changed = []
    for page in pages():
        old, new = refresh(page)
        if old != new:
            changed.append(page)
            if not argv:
                page.write_text(new, encoding="utf-8")
    for page in changed:
        print(f"{'stale' if argv else 'rewrote'}: {page.relative_to(ROOT)}")
    if argv and changed:
        print("run: python docs/_ext/generated.py")
    return 1 if argv and changed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
