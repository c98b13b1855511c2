"""Write BENCHMARKS.md and PNG charts from a :class:`Report`."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from .harness import RESULTS, Report

ROOT = Path(__file__).parent.parent

METHOD = """\
Every scenario runs storage-dsn and each peer in the same process and the same run,
interleaved round by round (A B C A B C ...), after one warm-up call each. A round times a
fixed number of calls; for a call of microseconds, as many more as fill 0.2 s, so a fast
tool's round is not a few milliseconds that one scheduler hiccup doubles. The tables give
the median, min and max of the per-call time over the rounds, the median client CPU
seconds of a round (of the fixed number of calls), and the ratio of each peer's median to
ours (above 1: storage-dsn is faster). The machine and every library version are
recorded in `benchmarks/results/latest.json`. Run `nox -s bench` (or `nox -s bench --
--quick` for a smoke run) to reproduce; timings on shared machines are noisy, ratios less so.

Local writes are atomic (a new temporary file renamed over the key), so every write
creates an inode and, on ext4, renaming over an existing file makes the kernel allocate
and start writing back the new data inside the `rename` call (`auto_da_alloc`, the
behaviour that makes replace-by-rename survive a crash); on this machine's ext4 (mounted
with `discard`) that is system CPU in the writer's process, not Python, and it is where
the time goes against `open()`, which truncates in place and can leave a torn file. It
swings with the host's disk load: over five full runs on this kind of machine the 256 MiB
write measured 0.98x, 0.87x, 0.5x, 0.59x and 0.40x of `open()`, and small writes between
0.26x and 0.82x. Each 256 MiB write round starts after an untimed `os.sync()`, so no tool
pays for the writeback of the previous one's dirty pages. Reads cost the same as `open()`.

S3 scenarios talk to a moto server in its own process (pinned to the other core), so wall
time is mostly the server's and the client CPU column is what the library controls. One
server cost depends on the client: after a multipart upload that declares no checksum
algorithm, moto computes a whole-object CRC64 in Python, which costs more than the
transfer. boto3's transfer declares CRC32, and storage-dsn's obstore engine sends a
CRC64-NVME per part (which real S3 verifies, so it is worth having anyway); s3fs declares
none, so its 256 MiB upload time is mostly that moto cost, not s3fs's. Real S3 computes
checksums on its own side either way. The `scale` group runs on SeaweedFS instead (see
"At scale (SeaweedFS)" below).

Serving scenarios run each app under gunicorn (2 sync workers) on loopback and load it with
wrk, the server pinned to one core and wrk to the other; their unit is requests per second
(higher is better) and their CPU column is the workers' CPU seconds per 1,000 requests.
"""


SCALE_METHOD = """\
The `scale` group (`nox -s bench -- --only scale`, issue #15) runs on SeaweedFS, a real S3
server, with the issue's sizes; every tool is its own process, as a user runs it, so the
interpreter's start, imports and client set-up are on the clock. Wall time and CPU seconds
come from `os.wait4`, the peak RSS from GNU time; the CPU column is the client's CPU
seconds of a run. Its results are saved in `benchmarks/results/scale.json`; every ratio
below 1 is explained in docs/benchmarks.md ("At scale: reading the figures").
"""


def write_markdown(report: Report, scale: Report | None = None) -> Path:
    """BENCHMARKS.md from ``report`` (``latest.json``), with the scale group's run after it."""
    lines = ["# Benchmarks", "", METHOD]
    m = report.machine
    lines += [
        f"Last full run: {m.get('date')}, {m.get('cores')} cores, {m.get('cpu')}, "
        f"Python {m.get('python')}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()) + ".",
        "",
    ]
    for scenario in dict.fromkeys(r.scenario for r in report.results):
        lines += _section(report, scenario, "##")
    if scale is not None and scale.results:
        m = scale.machine
        start, end = (m.get(f"scale group: load average at {w}") for w in ("start", "end"))
        load = ""
        if start and end:
            load = f", load average {start[0]:.1f} at the start and {end[0]:.1f} at the end"
        lines += [
            "## At scale (SeaweedFS)",
            "",
            SCALE_METHOD,
            f"Last run: {m.get('date')}, {m.get('cores')} cores{load}.",
            "",
        ]
        for scenario in dict.fromkeys(r.scenario for r in scale.results):
            lines += _section(scale, scenario, "###")
    path = ROOT / "BENCHMARKS.md"
    path.write_text("\n".join(lines))
    return path


def _section(report: Report, scenario: str, heading: str) -> list[str]:
    """One scenario: its table, the ratios that do not fit a column, and its chart."""
    chart = _chart(report, scenario)
    lines = [f"{heading} {scenario.removeprefix('scale: ')}", ""]
    cpu = "CPU s per 1,000 req" if report_unit(report, scenario) == "req/s" else "CPU s/round"
    lines += [
        f"| tool | median | min | max | {cpu} | ours vs this (above 1: ours better) |",
        "|---|---|---|---|---|---|",
    ]
    tools = {r.tool for r in report.results if r.scenario == scenario}
    # A peer's column holds its ratio to our first row; a ratio to one of our variants
    # ("peer (with variant)") or any other pairing is listed under the table.
    ratios: dict[str, float] = {}
    others: list[str] = []
    for q in report.ratios:
        if q.scenario != scenario:
            continue
        peer = q.vs.split(" (with ")[0]
        if peer in tools and peer not in ratios:
            ratios[peer] = q.ratio
        else:
            others.append(f"{q.vs}: {q.ratio:.2f}x")
    for r in report.results:
        if r.scenario != scenario:
            continue
        if r.tool in ratios:
            ratio = f"{ratios[r.tool]:.2f}x"
        else:
            ratio = "(reference)" if "reference" in r.tool or "ceiling" in r.tool else "(ours)"
        lines.append(
            f"| {r.tool} | {_value(r.median, r.unit)} | {_value(r.min, r.unit, bare=True)} "
            f"| {_value(r.max, r.unit, bare=True)} | {r.cpu_s:.3f} | {ratio} |"
        )
    if others:
        lines += ["", "Other ratios (above 1: ours better): " + "; ".join(others) + "."]
    if chart:
        lines += ["", f"![{scenario}](benchmarks/results/{chart.name})"]
    lines.append("")
    return lines


def _value(value: float, unit: str, *, bare: bool = False) -> str:
    # A ratio of bytes (0.001 x) needs its third decimal; everything else reads at two.
    text = f"{value:.3f}" if unit == "x" else f"{value:.2f}"
    return text if bare else f"{text} {unit}"


def report_unit(report: Report, scenario: str) -> str:
    return next(r.unit for r in report.results if r.scenario == scenario)


def _chart(report: Report, scenario: str) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in report.results if r.scenario == scenario]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.2))
    names = [r.tool for r in rows][::-1]
    medians = [r.median for r in rows][::-1]
    errors = [[r.median - r.min for r in rows][::-1], [r.max - r.median for r in rows][::-1]]
    colors = ["#2b7bba" if n.startswith("storage-dsn") else "#999999" for n in names]
    ax.barh(names, medians, xerr=errors, color=colors)
    better = "higher" if rows[0].unit == "req/s" else "lower"
    ax.set_xlabel(f"{rows[0].metric} ({rows[0].unit}), {better} is better")
    # A log axis only where the values span orders of magnitude: on a log axis bars start
    # at an arbitrary left edge, and close values would look far apart.
    if better == "lower" and min(medians) > 0 and max(medians) / min(medians) > 20:
        ax.set_xscale("log")
    ax.set_title(textwrap.fill(scenario, 60))  # a long one would be cut at the edge
    fig.tight_layout()
    slug = re.sub(r"[^a-z0-9]+", "-", scenario.lower()).strip("-")
    path = RESULTS / f"{slug}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
