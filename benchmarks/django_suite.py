"""Django's storage test suite, adapted (tests/test_django.py), on moto's S3 server: our
DSNStorage beside django-storages' S3Storage, on the same tests.

``python -m benchmarks.django_suite`` (needs the test extra and ``django-storages[s3]``)
runs the tests that take their storage from the suite's fixtures, once per backend, and
prints each one's passes and failures. Tests that construct a DSNStorage themselves
(options, settings, migrations, the manifest) are not comparable and are left out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

SELECTION = (
    "s3-server and (TestFileStorage or TestFileField or TestFileSaveRaceCondition"
    " or TestFileStoragePathParsing or TestContentFile or TestDjangoSemantics)"
)


def run(compare: str | None) -> tuple[int, int, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_DSN_DJANGO_COMPARE"}
    if compare:
        env["STORAGE_DSN_DJANGO_COMPARE"] = compare
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf"]
    argv += ["tests/test_django.py", "-k", SELECTION, "-W", "ignore::DeprecationWarning"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", tail)) else 0
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", tail)) else 0
    failures = [
        line.split(" - ")[0] for line in done.stdout.splitlines() if line.startswith("FAILED")
    ]
    return passed, failed, failures


def main() -> int:
    for label, compare in (
        ("storage-dsn DSNStorage", None),
        ("django-storages S3Storage", "django-storages"),
    ):
        passed, failed, failures = run(compare)
        print(f"{label}: {passed} passed, {failed} failed of {passed + failed}")
        for name in failures:
            print(f"    {name.removeprefix('FAILED tests/test_django.py::')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
