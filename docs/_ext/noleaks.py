"""Fail the docs build when a page would publish the environment of whoever builds it.

autodoc renders a default argument by its value: ``environ=os.environ`` became the whole
environment (AWS keys included) in the API pages. ``autodoc_preserve_defaults`` makes it
show the source text instead; this check keeps it that way. After the build, every output
file is searched for the repr of an environment mapping and for the value of every
variable whose name says it is secret; a find is an error naming the variable and the
file, never the value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|KEY|CREDENTIAL|SAS|SIGNATURE|DSN", re.I)
_MIN_LENGTH = 8  # shorter values ("true", "1") are too common to mean anything


def _check(app: Sphinx, exception: BaseException | None) -> None:
    if exception is not None:
        return
    secrets = {
        name: value
        for name, value in os.environ.items()
        if _SECRET_NAME.search(name) and len(value) >= _MIN_LENGTH
    }
    found = []
    for path in Path(app.outdir).rglob("*"):
        if not path.is_file() or path.suffix not in (".html", ".js", ".txt", ".json"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "environ({" in text:
            found.append(f"{path.name}: an environment mapping's repr")
        found += [f"{path.name}: ${name}" for name, value in secrets.items() if value in text]
    if found:
        raise ExtensionError("the docs would publish the environment: " + "; ".join(found))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("build-finished", _check)
    return {"version": "1", "parallel_read_safe": True}
