"""A small side-by-side benchmark harness.

Each scenario runs ours and every peer interleaved (A B C A B C ...), at least five rounds,
and records wall and client CPU time per round. Results hold median, min and max; ratios
compare each peer's median with ours (above 1: ours is faster).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
#: A round of a microsecond-scale tool lasts at least this long (its call count grows to
#: fill it), so that a fast tool's rounds are not a few milliseconds that one scheduler
#: hiccup doubles while a slow peer's rounds average the same hiccups away.
MIN_ROUND_S = 0.2


@dataclass
class Result:
    scenario: str
    tool: str
    metric: str
    median: float
    min: float
    max: float
    unit: str
    cpu_s: float
    rounds: int


@dataclass
class Ratio:
    scenario: str
    vs: str
    ratio: float


@dataclass
class Report:
    machine: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)

    def add(
        self,
        scenario: str,
        tool: str,
        metric: str,
        unit: str,
        samples: list[float],
        cpu: list[float],
    ) -> None:
        """Record one tool's per-round samples (and CPU seconds) as their median and spread."""
        self.results.append(
            Result(
                scenario=scenario,
                tool=tool,
                metric=metric,
                median=statistics.median(samples),
                min=min(samples),
                max=max(samples),
                unit=unit,
                cpu_s=statistics.median(cpu),
                rounds=len(samples),
            )
        )

    def compare(
        self,
        scenario: str,
        ours: tuple[str, Callable[[], None]],
        peers: list[tuple[str, Callable[[], None]]],
        *,
        number: int,
        rounds: int,
        variants: list[tuple[str, Callable[[], None]]] = (),  # type: ignore[assignment]
        metric: str = "time per call",
        unit: str = "us",
        setup: Callable[[], None] | None = None,
    ) -> None:
        """Time ``number`` calls of each tool per round, interleaved, for ``rounds`` rounds
        (in microseconds: as many more calls as fill :data:`MIN_ROUND_S`).

        ``variants`` are other ways of using storage-dsn: measured, shown, given no ratio.
        ``setup`` runs, untimed, before each tool's round (``os.sync``: no tool pays for
        the writeback of the one before it).
        """
        tools = [ours, *variants, *peers]
        scale = {"us": 1e6, "ms": 1e3, "s": 1.0}[unit]
        wall: dict[str, list[float]] = {name: [] for name, _ in tools}
        cpu: dict[str, list[float]] = {name: [] for name, _ in tools}
        calls = {name: number for name, _ in tools}
        for name, fn in tools:  # warm every tool once, outside the measurement
            t0 = time.perf_counter()
            fn()
            if unit == "us":  # a call of microseconds: time at least MIN_ROUND_S of them
                for _ in range(number - 1):
                    fn()
                per_call = (time.perf_counter() - t0) / number
                calls[name] = max(number, min(100 * number, int(MIN_ROUND_S / per_call) + 1))
        for _ in range(rounds):
            for name, fn in tools:
                if setup is not None:
                    setup()
                count = calls[name]
                c0, t0 = time.process_time(), time.perf_counter()
                for _ in range(count):
                    fn()
                t1, c1 = time.perf_counter(), time.process_time()
                wall[name].append((t1 - t0) / count * scale)
                cpu[name].append((c1 - c0) * number / count)  # for ``number`` calls
        for name, _ in tools:
            self.add(scenario, name, metric, unit, wall[name], cpu[name])
        ours_median = statistics.median(wall[ours[0]])
        for name, _ in peers:
            self.ratios.append(
                Ratio(scenario=scenario, vs=name, ratio=statistics.median(wall[name]) / ours_median)
            )
        self.print_scenario(scenario)

    def print_scenario(self, scenario: str) -> None:
        print(f"\n{scenario}")
        for r in self.results:
            if r.scenario == scenario:
                print(
                    f"  {r.tool:<44} median {r.median:10.2f} {r.unit}"
                    f"  (min {r.min:.2f}, max {r.max:.2f}, cpu {r.cpu_s:.3f})"
                )
        for r in self.ratios:
            if r.scenario == scenario:
                print(f"  ratio vs {r.vs:<35} {r.ratio:8.1f}x")

    @classmethod
    def load(cls, name: str = "latest") -> Report:
        data = json.loads((RESULTS / f"{name}.json").read_text())
        return cls(
            machine=data["machine"],
            versions=data["versions"],
            results=[Result(**r) for r in data["results"]],
            ratios=[Ratio(**r) for r in data["ratios"]],
        )

    def merged_into(self, name: str = "latest") -> Report:
        """This run's scenarios in place of theirs in the saved report ``name``; the saved
        report's other scenarios kept (a run of one group does not erase the others)."""
        if not (RESULTS / f"{name}.json").exists():
            return self
        saved = Report.load(name)
        ran = {r.scenario for r in self.results}
        order = list(dict.fromkeys(r.scenario for r in saved.results))
        order += [s for s in dict.fromkeys(r.scenario for r in self.results) if s not in order]
        results = [r for r in saved.results if r.scenario not in ran] + self.results
        results.sort(key=lambda r: order.index(r.scenario))
        return Report(
            machine=self.machine,
            versions={**saved.versions, **self.versions},
            results=results,
            ratios=[q for q in saved.ratios if q.scenario not in ran] + self.ratios,
        )

    def save(self, name: str = "latest") -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}.json"
        data = {
            "machine": self.machine,
            "versions": self.versions,
            "results": [asdict(r) for r in self.results],
            "ratios": [asdict(r) for r in self.ratios],
        }
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def versions(*packages: str) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def tool_versions(*commands: str) -> dict[str, str]:
    """The first line a command prints about its version (wrk, rclone, nginx, curl)."""
    import shutil
    import subprocess

    flags = {"wrk": "-v", "rclone": "version", "nginx": "-v", "curl": "--version"}
    found = {}
    for command in commands:
        if shutil.which(command) is None:
            found[command] = "not installed"
            continue
        run = subprocess.run(
            [command, flags.get(command, "--version")], capture_output=True, text=True
        )
        lines = (run.stdout or run.stderr).strip().splitlines()
        found[command] = " ".join(lines[0].split()[:3]) if lines else "unknown"
    return found
