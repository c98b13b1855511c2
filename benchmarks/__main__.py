"""Run the benchmarks side by side with the tools users pick instead.

``python -m benchmarks`` (from the repository root) is the command line; ``nox -s bench``
installs what it needs and runs everything, ``nox -s bench -- --quick`` every scenario with
small counts, ``nox -s bench -- --only signing`` one group (its scenarios replace theirs in
``latest.json``; the others' results stay). Results go to ``benchmarks/results/latest.json``
(with the machine and every library version), ``BENCHMARKS.md`` and PNG charts under
``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import sys

from .harness import RESULTS, Report, machine_info, tool_versions, versions
from .report import write_markdown
from .scenarios_local import run_local
from .scenarios_s3 import run_s3_large, run_s3_latency, run_s3_small
from .scenarios_scale import run_scale
from .scenarios_serving import run_serving
from .scenarios_sync import run_sync
from .scenarios_urls import run_parse, run_signing, run_urls


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--only", nargs="*", help="run only these scenario groups")
    parser.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="the scale group's sizes times this (one round below 1): for a loaded machine",
    )
    parser.add_argument("--rounds", type=int, help="rounds of the scale group (default 3)")
    parser.add_argument(
        "--report", action="store_true", help="only rewrite BENCHMARKS.md from latest.json"
    )
    args = parser.parse_args(argv)
    if args.report:
        print(f"report:  {write_markdown(Report.load('latest'), _scale())}")
        return 0
    report = Report(
        machine=machine_info(),
        versions=versions(
            "storage-dsn",
            "fsspec",
            "s3fs",
            "boto3",
            "botocore",
            "django-storage-url",
            "django",
            "flask",
            "werkzeug",
            "whitenoise",
            "gunicorn",
            "obstore",
            "moto",
            "awscli",
            "aiobotocore",
            "azure-storage-blob",
            "google-cloud-storage",
            "cryptography",
        )
        | tool_versions("wrk", "nginx", "rclone", "curl"),
    )
    scale = 0.1 if args.quick else 1.0
    rounds = 5 if args.quick else 9
    if not args.only or "urls" in args.only:
        run_parse(report, scale=scale, rounds=rounds)
        run_urls(report, scale=scale, rounds=rounds)
    if not args.only or "signing" in args.only:
        run_signing(report, scale=scale, rounds=rounds)
    if not args.only or "local" in args.only:
        run_local(report, quick=args.quick, rounds=5)
    if not args.only or "s3" in args.only:
        run_s3_small(report, quick=args.quick, rounds=5)
        run_s3_small(report, quick=args.quick, rounds=5, kib=64)
        run_s3_latency(report, quick=args.quick, rounds=5)
        run_s3_large(report, quick=args.quick, rounds=5)
    if not args.only or "serving" in args.only:
        run_serving(report, quick=args.quick, rounds=5)
    if not args.only or "sync" in args.only:
        run_sync(report, quick=args.quick, rounds=5)
    if args.only and "scale" in args.only:
        one = args.quick or args.fraction < 1
        rounds = args.rounds or (1 if one else 3)
        run_scale(report, quick=args.quick, rounds=rounds, fraction=args.fraction)
    # The scale group alone is saved beside latest.json, not over it (its minutes-long
    # runs are not repeated with every other group); another group run alone replaces
    # its own scenarios in latest.json and keeps the others'.
    name = "quick" if args.quick else "scale" if args.only == ["scale"] else "latest"
    if args.only and name == "latest":
        report = report.merged_into("latest")
    path = report.save(name)
    print(f"\nresults: {path}")
    if name == "latest":
        print(f"report:  {write_markdown(report, _scale())}")
    elif name == "scale":
        print(f"report:  {write_markdown(Report.load('latest'), report)}")
    return 0


def _scale() -> Report | None:
    """The scale group's last run, if there is one."""
    return Report.load("scale") if (RESULTS / "scale.json").exists() else None


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
