"""Benchmarks of storage-dsn side by side with the tools users pick instead.

Run from the repository root with ``python -m benchmarks`` (``--quick``, ``--only GROUP``,
``--report``), or ``nox -s bench``, which installs what they need; see BENCHMARKS.md.
"""
