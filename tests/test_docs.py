"""Every example in the docs and the README runs, so the pages cannot drift from the code.

Fenced blocks are taken in page order and share one namespace per page:

- ``python``: executed;
- ``pycon``: run as a doctest (``...`` matches anything, whitespace is normalised);
- ``console``: each ``$ command`` runs in a shell and its output is compared like a
  doctest's;
- anything else (``shell`` install lines, ``text``, ``nginx``, ``toml``, ``yaml``) is
  shown, not run.

Each page runs in an empty working directory with the storage-dsn command on ``PATH``.
Pages about S3 get a bucket on the test moto server in ``DEFAULT_STORAGE_DSN``.
"""

from __future__ import annotations

import doctest
import gc
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.conftest import KEY_ID, QUOTED_SECRET, make_bucket

ROOT = Path(__file__).parents[1]
ALL_PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```([\w-]+)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
RUN = {"python", "pycon", "console"}
INCLUDED = re.compile(r"<!-- generated: include .*?<!-- end generated -->", re.DOTALL)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: Environment for pages whose examples read DEFAULT_STORAGE_DSN as the platform sets it.
PAGE_ENV = {
    "deploying.md": (
        "s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY"
        "@my-project-media.s3.eu-central-1.amazonaws.com/?auth=s3v4&domain=cdn.example.net"
    ),
}
#: Pages whose DEFAULT_STORAGE_DSN is a fresh bucket on the moto server.
S3_PAGES = {"migrating.md"}
#: Pages that use Flask's test client in one-liners: it leaves a streamed response's file
#: for the caller to close (a server closes it; test_flask checks that), so those pages
#: would warn about files the examples never close. Only ResourceWarning is ignored.
TEST_CLIENT_PAGES = {"flask.md"}


def blocks(page: Path) -> list[tuple[str, int, str]]:
    text = page.read_text(encoding="utf-8")
    # A copy of a file (the example app's) is shown, not run: its own tests run it.
    copies = [m.span() for m in INCLUDED.finditer(text)]
    found = []
    for match in FENCE.finditer(text):
        language = match.group(1)
        if language in RUN and not any(a <= match.start() < b for a, b in copies):
            line = text.count("\n", 0, match.start(2)) + 1
            found.append((language, line, match.group(2)))
    return found


PAGES = [page for page in ALL_PAGES if blocks(page)]  # api.md and the like have none


def test_generated_regions_are_fresh() -> None:
    """Tables, reports and copied files written into the pages match what the code and
    the files give now (docs/_ext/generated.py; run it to regenerate)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "_ext" / "generated.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_scheme_has_a_parameter_table() -> None:
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import dsnref
    finally:
        sys.path.pop(0)
    texts = [page.read_text(encoding="utf-8") for page in ALL_PAGES]
    assert dsnref.undocumented(texts) == []


ROLE = re.compile(r"\{(py:\w+|doc|ref)\}`")


@pytest.mark.parametrize("page", [p for p in ALL_PAGES if p.name != "api.md"], ids=lambda p: p.name)
def test_pages_read_as_markdown(page: Path) -> None:
    """Every page but the API reference is complete as plain Markdown: no Sphinx roles
    or directives a code host would show raw (generated regions hold their content)."""
    text = page.read_text(encoding="utf-8")
    assert not ROLE.search(text), f"{page.name}: a Sphinx role; use a plain link"
    for match in re.finditer(r"^```\{([\w-]+)\} ?(\S*)", text, re.MULTILINE):
        directive, argument = match.groups()
        if directive == "include":  # the site's copy of a file the page links to
            assert f"]({argument})" in text, f"{page.name}: include without a link"
            continue
        assert directive == "toctree", f"{page.name}: directive {directive}"


def test_pages_have_examples() -> None:
    """The collector finds the examples (a broken pattern would pass every page)."""
    counts = {page.name: len(blocks(page)) for page in ALL_PAGES}
    assert counts["getting-started.md"] >= 4
    assert counts["migrating.md"] >= 5
    assert counts["README.md"] >= 3


class _Failures(doctest.DocTestRunner):
    def __init__(self) -> None:
        super().__init__(optionflags=FLAGS, verbose=False)
        self.reports: list[str] = []

    def report_failure(
        self, out: object, test: doctest.DocTest, example: doctest.Example, got: str
    ) -> None:
        self.reports.append(
            f"{test.filename}:{test.lineno + example.lineno}: {example.source.strip()}\n"
            f"expected:\n{example.want}got:\n{got}"
        )

    def report_unexpected_exception(
        self, out: object, test: doctest.DocTest, example: doctest.Example, exc_info: object
    ) -> None:
        import traceback

        assert isinstance(exc_info, tuple)
        text = "".join(traceback.format_exception(*exc_info))
        self.reports.append(
            f"{test.filename}:{test.lineno + example.lineno}: {example.source.strip()}\n{text}"
        )


def run_console(block: str, where: str, env: dict[str, str]) -> list[str]:
    """Run each ``$ command``; return a report per command whose output differs."""
    checker = doctest.OutputChecker()
    failures = []
    commands: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    for command, expected in commands:
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120
        )
        want = "\n".join(expected).strip() + "\n"
        got = result.stdout.strip() + "\n"
        if result.returncode != 0 or not checker.check_output(want, got, FLAGS):
            failures.append(
                f"{where}: $ {command}\nexit {result.returncode}\nexpected:\n{want}"
                f"got:\n{got}stderr:\n{result.stderr}"
            )
    return failures


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.chdir(tmp_path)
    bindir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("COLUMNS", "100")
    if page.name in PAGE_ENV:
        monkeypatch.setenv("DEFAULT_STORAGE_DSN", PAGE_ENV[page.name])
    if page.name in S3_PAGES:
        endpoint = request.getfixturevalue("moto_server")
        bucket = make_bucket(endpoint)
        host = endpoint.removeprefix("http://")
        dsn = f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{host}/{bucket}/media/"
        monkeypatch.setenv("DEFAULT_STORAGE_DSN", dsn)
    # Examples may set variables themselves; monkeypatch restores the whole environment.
    for name in list(os.environ):
        monkeypatch.setenv(name, os.environ[name])
    with warnings.catch_warnings():
        if page.name in TEST_CLIENT_PAGES:
            warnings.simplefilter("ignore", ResourceWarning)
        failures = run_page(page)
        gc.collect()  # while the filter holds
    assert not failures, "\n\n".join(failures)


def run_page(page: Path) -> list[str]:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    runner = _Failures()
    failures: list[str] = []
    for language, line, source in blocks(page):
        where = f"{page.name}:{line}"
        if language == "python":
            exec(compile(source, where, "exec"), namespace)  # noqa: S102 (the docs' own code)
        elif language == "pycon":
            test = doctest.DocTestParser().get_doctest(source, namespace, where, where, line - 1)
            test.globs = namespace  # share names with the page's other blocks
            runner.run(test, clear_globs=False)
        else:
            failures += run_console(source, where, dict(os.environ))
    namespace.clear()
    return failures + runner.reports
