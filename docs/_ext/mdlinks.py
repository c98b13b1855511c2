"""Plain Markdown links, resolved the Sphinx way on the site.

Pages link as a code host reads them (every page but the API reference is plain
Markdown): ``[`Storage`](api.md#storage_dsn.Storage)`` and ``[CHANGELOG.md](../CHANGELOG.md)``.
On the site, a link into ``api.md`` whose anchor is a dotted Python name becomes a
cross-reference to that object's entry, and a link to a file outside ``docs/`` (whose
content the page includes) keeps its text without a link.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform

_PYTHON_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+$")


def _outside(target: str, srcdir: str) -> bool:
    """Whether MyST's target (absolute for ``../`` links) names a file outside ``docs/``."""
    return target.startswith("/") and not target.startswith(srcdir.rstrip("/") + "/")


class PlainLinks(SphinxPostTransform):
    """Runs before MyST resolves its references (priority 9)."""

    default_priority = 8

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("reftype") != "myst" or node.get("refdomain") != "doc":
                continue
            target, anchor = node.get("reftarget", ""), node.get("reftargetid") or ""
            if target == "api" and _PYTHON_NAME.match(anchor):
                node["refdomain"], node["reftype"], node["reftarget"] = "py", "obj", anchor
                node["refexplicit"] = True
            elif target not in self.env.all_docs and _outside(target, str(self.env.srcdir)):
                node.replace_self(node.children[0].deepcopy() if node.children else nodes.Text(""))


def setup(app: Any) -> dict[str, Any]:
    app.add_post_transform(PlainLinks)
    return {"version": "1", "parallel_read_safe": True}
