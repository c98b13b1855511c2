"""Group ``scale``: sync and large objects at scale, on SeaweedFS (a real S3 server).

Every tool runs as its own process, as a user runs it (imports and client set-up on the
clock), against one SeaweedFS server in the same run; each process's wall time, CPU
seconds and peak RSS come from ``os.wait4`` (the process and the children it waited for).
Scenarios (issue #15):

* 5,000 x 4 KiB local -> S3: ``storage-dsn sync`` (obstore, and ``engine=s3fs``) beside
  ``aws s3 sync`` and ``rclone sync``, then each one's no-op re-run;
* 100,000 files local -> S3 (10,000 with ``--quick``), and a tenth of that: time, peak
  RSS and time to the first object (the bucket polled by another client), beside rclone;
* S3 -> S3 inside one server, 200 x 1 MiB: bytes through the client per data byte (a
  counting loopback proxy between the tool and the server), beside rclone and aws;
* one 512 MiB object up and down: ``storage-dsn put``/``cat`` (both engines), boto3's
  transfer manager, ``aws s3 cp``, ``rclone copyto``, and ``curl`` on a presigned URL (the
  floor); peak RSS too;
* ``sync --jobs`` 1/4/16/64 on 2,000 x 64 KiB.

The machine is shared: its load average at the start and end of the group is recorded.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.servers.moto import KEY_ID, SECRET
from tests.servers.seaweedfs import SeaweedFS, seaweedfs_server

from .harness import Ratio, Report

QUOTED = SECRET.replace("/", "%2F").replace("+", "%2B")
#: GNU time, for each tool's peak RSS (Debian package ``time``).
TIME = shutil.which("time", path="/usr/bin:/bin")
MiB = 2**20


@dataclass
class Run:
    """One tool process: wall seconds, CPU seconds, peak RSS in MB."""

    wall: float
    cpu: float
    rss_mb: float


def measure(args: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``args`` to completion: its wall time, CPU seconds (``os.wait4``) and peak RSS.

    The peak RSS comes from GNU time, whose child is forked from a small process: a child
    forked from this one would report this process's RSS at the fork as its own peak
    (Linux keeps the pre-exec high-water mark).
    """
    # A machine-wide AWS_CA_BUNDLE breaks rclone's S3 client; plain HTTP needs none.
    environ = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    environ.update(_credentials(), **(env or {}))
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as peak:
        timed = [TIME, "-o", peak.name, "-f", "%M", *args] if TIME else args
        started = time.perf_counter()
        proc = subprocess.Popen(timed, env=environ, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{' '.join(args[:3])} failed: {tail}")
        kib = int(peak.read().split()[-1]) if TIME else usage.ru_maxrss
    return Run(wall, usage.ru_utime + usage.ru_stime, kib / 1024)


def _credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _rclone_env(endpoint: str) -> dict[str, str]:
    return {
        "RCLONE_CONFIG_SW_TYPE": "s3",
        "RCLONE_CONFIG_SW_PROVIDER": "SeaweedFS",
        "RCLONE_CONFIG_SW_ENDPOINT": endpoint,
        "RCLONE_CONFIG_SW_ACCESS_KEY_ID": KEY_ID,
        "RCLONE_CONFIG_SW_SECRET_ACCESS_KEY": SECRET,
        "RCLONE_CONFIG_SW_REGION": "us-east-1",
    }


def _aws() -> str:
    return shutil.which("aws", path=os.path.dirname(sys.executable)) or "aws"


class Tools:
    """The command lines of every tool for one server (``host`` may be a proxy's)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.host = endpoint.removeprefix("http://")
        self.rclone_env = _rclone_env(endpoint)

    def dsn(self, place: str, engine: str | None = None) -> str:
        dsn = f"s3+http://{KEY_ID}:{QUOTED}@{self.host}/{place}/"
        return dsn + f"?engine={engine}" if engine else dsn

    def ours(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "storage_dsn", *args]

    def aws(self, *args: str) -> list[str]:
        return [_aws(), "s3", *args, "--only-show-errors", "--endpoint-url", self.endpoint]

    def sync(self, tool: str, src: str, place: str, *, s3_src: bool = False) -> list[str]:
        """``tool`` syncing ``src`` (a local path, or a place on this server) to ``place``."""
        if tool.startswith("storage-dsn"):
            engine = "s3fs" if "s3fs" in tool else None
            source = self.dsn(src, engine) if s3_src else src
            return self.ours("sync", source, self.dsn(place, engine))
        if tool.startswith("aws"):
            return self.aws("sync", f"s3://{src}/" if s3_src else src, f"s3://{place}/")
        return ["rclone", "sync", f"sw:{src}" if s3_src else src, f"sw:{place}"]


def make_tree(path: Path, count: int, size: int) -> None:
    """``count`` files of ``size`` random bytes, 100 to a directory."""
    data = os.urandom(size + count)
    for i in range(count):
        directory = path / f"d{i // 100:04}"
        if i % 100 == 0:
            directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:06}.bin").write_bytes(data[i : i + size])


def count(server: SeaweedFS, place: str) -> int:
    bucket, _, prefix = place.partition("/")
    pages = server.client().get_paginator("list_objects_v2")  # type: ignore[attr-defined]
    return sum(len(p.get("Contents", [])) for p in pages.paginate(Bucket=bucket, Prefix=prefix))


class Places:
    """Fresh prefixes in one bucket of the server."""

    def __init__(self, server: SeaweedFS) -> None:
        self.bucket = server.new_bucket()

    def new(self, name: str) -> str:
        return f"{self.bucket}/{name}-{uuid.uuid4().hex[:8]}"


def _record(report: Report, scenario: str, runs: dict[str, list[Run]], what: str = "wall") -> None:
    for tool, samples in runs.items():
        if what == "wall":
            values = [r.wall for r in samples]
            report.add(scenario, tool, "wall time", "s", values, [r.cpu for r in samples])
        else:
            values = [r.rss_mb for r in samples]
            report.add(scenario, tool, "peak RSS", "MB", values, [r.cpu for r in samples])


def _ratios(
    report: Report, scenario: str, runs: dict[str, list[Run]], ours: list[str], peers: list[str]
) -> None:
    """Each peer's median over each of ours (above 1: ours better), first of ours plain."""
    for i, mine in enumerate(ours):
        for peer in peers:
            vs = peer if i == 0 else f"{peer} (with {mine})"
            ratio = statistics.median(r.wall for r in runs[peer]) / statistics.median(
                r.wall for r in runs[mine]
            )
            report.ratios.append(Ratio(scenario=scenario, vs=vs, ratio=ratio))


# -- 5,000 small files ----------------------------------------------------------------------


def run_small_sync(
    report: Report, server: SeaweedFS, places: Places, *, files: int, rounds: int
) -> None:
    tools = Tools(server.endpoint)
    ours = ["storage-dsn sync (default: obstore)", "storage-dsn sync (engine=s3fs)"]
    peers = ["aws s3 sync", "rclone sync"]
    full: dict[str, list[Run]] = {t: [] for t in [*ours, *peers]}
    noop: dict[str, list[Run]] = {t: [] for t in [*ours, *peers]}
    with tempfile.TemporaryDirectory() as tmp:
        make_tree(Path(tmp), files, 4096)
        for _ in range(rounds):
            for tool in full:
                place = places.new("small")
                args = tools.sync(tool, tmp, place)
                full[tool].append(measure(args, tools.rclone_env))
                if count(server, place) != files:
                    raise RuntimeError(f"{tool} left {count(server, place)} of {files}")
                noop[tool].append(measure(args, tools.rclone_env))
    scenario = f"scale: sync {files:,} x 4 KiB local -> S3 (SeaweedFS)"
    rerun = f"scale: no-op re-run of that sync ({files:,} files)"
    for name, runs in ((scenario, full), (rerun, noop)):
        _record(report, name, runs)
        _ratios(report, name, runs, ours, peers)
        report.print_scenario(name)


# -- 100k files: time, memory, first object -----------------------------------------------


def _first_object(server: SeaweedFS, place: str, started: threading.Event) -> Callable[[], float]:
    """Poll ``place`` from another client; the returned call gives the seconds from
    ``started`` to the first object listed (or -1)."""
    bucket, _, prefix = place.partition("/")
    s3 = server.client()
    found: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        started.wait()
        t0 = time.perf_counter()
        while not stop.is_set():
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/", MaxKeys=1)  # type: ignore[attr-defined]
            if listed.get("KeyCount"):
                found.append(time.perf_counter() - t0)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()

    def result() -> float:
        stop.set()
        thread.join()
        return found[0] if found else -1.0

    return result


def run_big_sync(report: Report, server: SeaweedFS, places: Places, *, files: int) -> None:
    tools = Tools(server.endpoint)
    names = ["storage-dsn sync (default: obstore)", "rclone sync"]
    rows: dict[str, dict[str, list[float]]] = {}
    for n in (files // 10, files):
        with tempfile.TemporaryDirectory() as tmp:
            make_tree(Path(tmp), n, 256)
            for tool in names:
                place = places.new("big")
                started = threading.Event()
                first = _first_object(server, place, started)
                started.set()
                run = measure(tools.sync(tool, tmp, place), tools.rclone_env)
                latency = first()
                if count(server, place) != n:
                    raise RuntimeError(f"{tool} left {count(server, place)} of {n}")
                rows[f"{tool}, {n:,} files"] = {
                    "wall": [run.wall],
                    "cpu": [run.cpu],
                    "rss": [run.rss_mb],
                    "first": [latency],
                }
    for metric, unit, scenario in (
        ("wall", "s", f"scale: sync {files:,} x 256 B local -> S3, wall time"),
        ("rss", "MB", f"scale: sync {files:,} x 256 B local -> S3, peak RSS"),
        ("first", "s", f"scale: sync {files:,} x 256 B local -> S3, time to first object"),
    ):
        for tool, data in rows.items():
            report.add(scenario, tool, metric, unit, data[metric], data["cpu"])
        for n in (files // 10, files):
            mine, peer = (f"{t}, {n:,} files" for t in names)
            report.ratios.append(
                Ratio(
                    scenario=scenario,
                    vs=f"{peer} (with {n:,} files)",
                    ratio=rows[peer][metric][0] / rows[mine][metric][0],
                )
            )
        mine_small, mine_big = (f"{names[0]}, {n:,} files" for n in (files // 10, files))
        report.ratios.append(
            Ratio(
                scenario=scenario,
                vs=f"storage-dsn {files // 10:,} files (share of the {files:,}-file figure)",
                ratio=rows[mine_small][metric][0] / rows[mine_big][metric][0],
            )
        )
        report.print_scenario(scenario)


# -- server-side copy -----------------------------------------------------------------------


class CountingProxy:
    """A loopback TCP proxy that counts the bytes passing through it, both ways."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.bytes = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(256 * 1024):
                dst.sendall(data)
                with self._lock:
                    self.bytes += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


def run_server_copy(
    report: Report, server: SeaweedFS, places: Places, *, files: int, rounds: int
) -> None:
    direct = Tools(server.endpoint)
    source = places.new("copy-src")
    with tempfile.TemporaryDirectory() as tmp:
        make_tree(Path(tmp), files, MiB)
        measure(direct.sync("rclone sync", tmp, source), direct.rclone_env)
    data = files * MiB
    names = ["storage-dsn sync (default: obstore)", "aws s3 sync", "rclone sync"]
    runs: dict[str, list[Run]] = {t: [] for t in names}
    share: dict[str, list[float]] = {t: [] for t in names}
    for _ in range(rounds):
        for tool in names:
            proxy = CountingProxy(server.endpoint)
            try:
                tools = Tools(proxy.endpoint)
                place = places.new("copy-dst")
                runs[tool].append(
                    measure(tools.sync(tool, source, place, s3_src=True), tools.rclone_env)
                )
                share[tool].append(proxy.bytes / data)
            finally:
                proxy.close()
            if count(server, place) != files:
                raise RuntimeError(f"{tool} left {count(server, place)} of {files}")
    scenario = f"scale: S3 -> S3 in one server, {files} x 1 MiB, wall time"
    _record(report, scenario, runs)
    _ratios(report, scenario, runs, names[:1], names[1:])
    report.print_scenario(scenario)
    scenario = f"scale: S3 -> S3 in one server, {files} x 1 MiB, client bytes per data byte"
    for tool in names:
        report.add(
            scenario,
            tool,
            "client bytes / data bytes",
            "x",
            share[tool],
            [r.cpu for r in runs[tool]],
        )
    report.print_scenario(scenario)


# -- one large object -----------------------------------------------------------------------

_BOTO3 = """
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
if sys.argv[2] == "up":
    s3.upload_file(sys.argv[3], sys.argv[4], sys.argv[5])
else:
    with open("/dev/null", "wb") as f:
        s3.download_fileobj(sys.argv[4], sys.argv[5], f)
"""


def _presigned(server: SeaweedFS, method: str, bucket: str, key: str) -> str:
    url: str = server.client().generate_presigned_url(  # type: ignore[attr-defined]
        method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600
    )
    return url


def run_large(report: Report, server: SeaweedFS, places: Places, *, mib: int, rounds: int) -> None:
    tools = Tools(server.endpoint)
    place = places.new("large")
    bucket, _, prefix = place.partition("/")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "big.bin")
        with source.open("wb") as f:
            for _ in range(mib // 8):
                f.write(os.urandom(8 * MiB))
        copy = str(Path(tmp, "copy.bin"))

        def key(tool: str) -> str:
            return f"{prefix}/{tool.split()[0]}-{'s3fs' if 's3fs' in tool else 'x'}/big.bin"

        def up(tool: str) -> list[str]:
            k = key(tool)
            if tool.startswith("storage-dsn"):
                engine = "s3fs" if "s3fs" in tool else None
                dsn = tools.dsn(f"{bucket}/{k.rpartition('/')[0]}", engine)
                return tools.ours("put", dsn, "big.bin", str(source))
            if tool.startswith("boto3"):
                return [sys.executable, "-c", _BOTO3, tools.endpoint, "up", str(source), bucket, k]
            if tool.startswith("aws"):
                return tools.aws("cp", str(source), f"s3://{bucket}/{k}")
            if tool.startswith("rclone"):
                # --ignore-times: rclone skips an object of the same size and time, which
                # every round after the first would be.
                return ["rclone", "copyto", "--ignore-times", str(source), f"sw:{bucket}/{k}"]
            url = _presigned(server, "put_object", bucket, k)
            return ["curl", "-sf", "-T", str(source), url, "-o", os.devnull]

        def down(tool: str) -> list[str]:
            k = key(tool)
            if tool.startswith("storage-dsn"):
                engine = "s3fs" if "s3fs" in tool else None
                dsn = tools.dsn(f"{bucket}/{k.rpartition('/')[0]}", engine)
                return tools.ours("cat", dsn, "big.bin")
            if tool.startswith("boto3"):
                return [sys.executable, "-c", _BOTO3, tools.endpoint, "down", "", bucket, k]
            if tool.startswith("aws"):
                return tools.aws("cp", f"s3://{bucket}/{k}", "-")
            if tool.startswith("rclone"):
                return ["rclone", "copyto", f"sw:{bucket}/{k}", copy]
            url = _presigned(server, "get_object", bucket, k)
            return ["curl", "-sf", url, "-o", os.devnull]

        ours = ["storage-dsn put/cat (default: obstore)", "storage-dsn put/cat (engine=s3fs)"]
        peers = [
            "boto3 transfer manager",
            "aws s3 cp",
            "rclone copyto",
            "curl, presigned URL (floor)",
        ]
        ups: dict[str, list[Run]] = {t: [] for t in [*ours, *peers]}
        downs: dict[str, list[Run]] = {t: [] for t in [*ours, *peers]}
        names = [*ours, *peers]
        for n in range(rounds):
            # Each round starts with another tool: the first upload of a round can pay for
            # the server growing its volumes, and that should not always be the same tool.
            order = names[n % len(names) :] + names[: n % len(names)]
            for tool in order:
                ups[tool].append(measure(up(tool), tools.rclone_env))
            for tool in order:
                downs[tool].append(measure(down(tool), tools.rclone_env))
                Path(copy).unlink(missing_ok=True)
    for direction, runs in (("upload", ups), ("download", downs)):
        scenario = f"scale: {direction} one {mib} MiB object (SeaweedFS), wall time"
        _record(report, scenario, runs)
        _ratios(report, scenario, runs, ours, peers)
        report.print_scenario(scenario)
        scenario = f"scale: {direction} one {mib} MiB object (SeaweedFS), peak RSS"
        _record(report, scenario, runs, what="rss")
        report.print_scenario(scenario)


# -- one small object: start-up and set-up on the clock ---------------------------------


def run_small_cat(report: Report, server: SeaweedFS, places: Places, *, rounds: int) -> None:
    """``cat`` of one 1 KiB object, each tool a new process: what a script or a cron job
    pays per object (interpreter start, imports, client set-up, the requests)."""
    tools = Tools(server.endpoint)
    place = places.new("cat")
    bucket, _, prefix = place.partition("/")
    server.client().put_object(  # type: ignore[attr-defined]
        Bucket=bucket, Key=f"{prefix}/one.bin", Body=os.urandom(1024)
    )
    ours = ["storage-dsn cat (default: obstore)", "storage-dsn cat (engine=s3fs)"]
    commands = {
        ours[0]: tools.ours("cat", tools.dsn(place), "one.bin"),
        ours[1]: tools.ours("cat", tools.dsn(place, "s3fs"), "one.bin"),
        "aws s3 cp - ": tools.aws("cp", f"s3://{place}/one.bin", "-"),
        "rclone cat": ["rclone", "cat", f"sw:{place}/one.bin"],
        "python -c pass (interpreter start)": [sys.executable, "-c", "pass"],
        "curl, presigned URL (floor)": [
            "curl", "-sf", _presigned(server, "get_object", bucket, f"{prefix}/one.bin")
        ],
    }  # fmt: skip
    runs: dict[str, list[Run]] = {t: [] for t in commands}
    for _ in range(max(5, rounds * 3)):  # a few tens of milliseconds each: more rounds
        for tool, args in commands.items():
            runs[tool].append(measure(args, tools.rclone_env))
    scenario = "scale: cat one 1 KiB object, a new process each (SeaweedFS), wall time"
    for run in runs.values():  # milliseconds read better here
        for i, r in enumerate(run):
            run[i] = Run(wall=r.wall * 1000, cpu=r.cpu, rss_mb=r.rss_mb)
    for tool, samples in runs.items():
        report.add(
            scenario, tool, "wall time", "ms", [r.wall for r in samples], [r.cpu for r in samples]
        )
    _ratios(report, scenario, runs, ours, [t for t in commands if t not in ours])
    report.print_scenario(scenario)


# -- --jobs ---------------------------------------------------------------------------------


def run_jobs(report: Report, server: SeaweedFS, places: Places, *, files: int, rounds: int) -> None:
    tools = Tools(server.endpoint)
    jobs = [1, 4, 16, 64]
    runs: dict[str, list[Run]] = {f"storage-dsn sync --jobs {j}": [] for j in jobs}
    with tempfile.TemporaryDirectory() as tmp:
        make_tree(Path(tmp), files, 64 * 1024)
        for _ in range(rounds):
            for j in jobs:
                place = places.new("jobs")
                args = [*tools.sync("storage-dsn", tmp, place), "--jobs", str(j)]
                runs[f"storage-dsn sync --jobs {j}"].append(measure(args))
    scenario = f"scale: sync {files:,} x 64 KiB with --jobs 1/4/16/64 (SeaweedFS)"
    _record(report, scenario, runs)
    one = statistics.median(r.wall for r in runs["storage-dsn sync --jobs 1"])
    for j in jobs[1:]:
        median = statistics.median(r.wall for r in runs[f"storage-dsn sync --jobs {j}"])
        report.ratios.append(
            Ratio(scenario=scenario, vs=f"--jobs {j} speed-up over --jobs 1", ratio=one / median)
        )
    report.print_scenario(scenario)


@contextmanager
def _server() -> Iterator[SeaweedFS]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        seaweedfs_server(Path(tmp), volume_size_mb=1024) as server,
    ):
        yield server


def run_scale(report: Report, *, quick: bool, rounds: int, fraction: float = 1.0) -> None:
    """The group; ``fraction`` scales every size (the issue's sizes at 1, a tenth with
    ``quick``), for a machine too loaded to run them whole."""
    missing = [t for t in ("rclone", "curl") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"the scale group needs {missing}: apt-get install {' '.join(missing)}")
    f = 0.1 if quick else fraction
    report.machine["scale group: size fraction"] = f
    report.machine["scale group: load average at start"] = list(os.getloadavg())
    with _server() as server:
        places = Places(server)
        run_small_sync(report, server, places, files=int(5000 * f), rounds=rounds)
        run_jobs(report, server, places, files=int(2000 * f), rounds=rounds)
        run_server_copy(report, server, places, files=int(200 * f), rounds=rounds)
        run_large(report, server, places, mib=max(8, int(512 * f) // 8 * 8), rounds=rounds)
        run_small_cat(report, server, places, rounds=rounds)
        run_big_sync(report, server, places, files=int(100_000 * f))
    report.machine["scale group: load average at end"] = list(os.getloadavg())
