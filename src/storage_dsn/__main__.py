"""``python -m storage_dsn``: the ``storage-dsn`` command."""

from __future__ import annotations

from .cli import run

raise SystemExit(run())
