"""Scenario: sync 1,000 small files (4 to 24 KiB) from a local folder to an empty bucket.

storage-dsn's ``sync`` against ``aws s3 sync`` and ``rclone sync``, each with its default
concurrency, on a moto server in its own process (pinned to core 1, the tools to core 0),
a fresh bucket per run; then each tool's no-op re-run over the tree it synced. A run that
leaves other than every object in the bucket is invalid and stops the benchmark. Wall time
and the tool's own CPU seconds (children's rusage) are recorded; a minimal concurrent
boto3 client measures the server's ceiling for the same PUTs.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port, running

from .harness import Ratio, Report

KEY, SECRET = "BENCHKEY", "bench/secret+value"
PINNED = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
SERVER = ["taskset", "-c", "1"] if PINNED else []
CLIENT = ["taskset", "-c", "0"] if PINNED else []


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in its own process (on core 1 when pinned); yields its endpoint."""
    port = free_port()
    argv = [*SERVER, sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with running(argv, port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        yield f"http://127.0.0.1:{port}"


def client(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=Config(max_pool_connections=32),
    )


def make_tree(path: Path, count: int) -> None:
    rng = random.Random(42)
    for i in range(count):
        f = path / f"dir{i % 20:02}" / f"file{i:04}.jpg"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(os.urandom(rng.randint(4, 24) * 1024))


def commands(tool: str, src: Path, endpoint: str, bucket: str) -> tuple[list[str], dict[str, str]]:
    host = endpoint.removeprefix("http://")
    quoted = SECRET.replace("/", "%2F").replace("+", "%2B")
    env = {
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    if tool.startswith("storage-dsn sync"):
        dsn = f"s3+http://{KEY}:{quoted}@{host}/{bucket}/media/"
        if "s3fs" in tool:
            dsn += "?engine=s3fs"  # the default command line picks obstore when installed
        return [sys.executable, "-m", "storage_dsn", "sync", str(src), dsn], env
    if tool == "aws s3 sync":
        aws = shutil.which("aws", path=os.path.dirname(sys.executable)) or "aws"
        return [
            aws,
            "s3",
            "sync",
            "--only-show-errors",
            str(src),
            f"s3://{bucket}/media/",
            "--endpoint-url",
            endpoint,
        ], env
    env.update(
        RCLONE_CONFIG_MOTO_TYPE="s3",
        RCLONE_CONFIG_MOTO_PROVIDER="Other",
        RCLONE_CONFIG_MOTO_ENDPOINT=endpoint,
        RCLONE_CONFIG_MOTO_ACCESS_KEY_ID=KEY,
        RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY=SECRET,
        RCLONE_CONFIG_MOTO_REGION="us-east-1",
    )
    return ["rclone", "sync", str(src), f"moto:{bucket}/media"], env


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # A machine-wide AWS_CA_BUNDLE breaks rclone's S3 client, and none of the tools needs
    # one for plain HTTP on loopback.
    environ = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    done = subprocess.run([*CLIENT, *args], env={**environ, **env}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def count(endpoint: str, bucket: str) -> int:
    pages = client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(len(page.get("Contents", [])) for page in pages)


def ceiling(endpoint: str, src: Path, bucket: str) -> tuple[float, float]:
    """PUT the tree with a minimal 16-thread boto3 client: the server's pace."""
    s3 = client(endpoint)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    c0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda p: s3.put_object(
                    Bucket=bucket, Key=f"media/{p.relative_to(src)}", Body=p.read_bytes()
                ),
                files,
            )
        )
    return time.perf_counter() - t0, time.process_time() - c0


def run_sync(report: Report, *, quick: bool, rounds: int) -> None:
    missing = [t for t in ("rclone",) if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"the sync benchmark needs {missing}: apt-get install rclone")
    files = 200 if quick else 1000
    ours = ["storage-dsn sync (default: obstore)", "storage-dsn sync (engine=s3fs)"]
    peers = ["aws s3 sync", "rclone sync"]
    tools = [*ours, *peers]
    wall: dict[str, list[float]] = {t: [] for t in [*tools, "ceiling"]}
    cpu: dict[str, list[float]] = {t: [] for t in [*tools, "ceiling"]}
    noop: dict[str, list[float]] = {t: [] for t in tools}
    noop_cpu: dict[str, list[float]] = {t: [] for t in tools}
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        make_tree(src, files)
        for _ in range(rounds):
            bucket = f"ceil-{uuid.uuid4().hex[:10]}"
            client(endpoint).create_bucket(Bucket=bucket)
            w, c = ceiling(endpoint, src, bucket)
            wall["ceiling"].append(w)
            cpu["ceiling"].append(c)
            for tool in tools:
                bucket = f"b-{uuid.uuid4().hex[:12]}"
                client(endpoint).create_bucket(Bucket=bucket)
                args, env = commands(tool, src, endpoint, bucket)
                w, c = timed(args, env)
                if count(endpoint, bucket) != files:
                    raise RuntimeError(f"{tool} left {count(endpoint, bucket)} of {files} objects")
                wall[tool].append(w)
                cpu[tool].append(c)
                w, c = timed(args, env)
                noop[tool].append(w)
                noop_cpu[tool].append(c)
    full = f"sync {files} small files to an empty bucket (moto server)"
    rerun = f"no-op re-run of that sync ({files} files)"
    labels = {"ceiling": "server ceiling: boto3 PUTs, 16 threads (reference)"}
    for scenario, data, cpus, names in (
        (full, wall, cpu, [*tools, "ceiling"]),
        (rerun, noop, noop_cpu, tools),
    ):
        for tool in names:
            report.add(scenario, labels.get(tool, tool), "wall time", "s", data[tool], cpus[tool])
        for mine in ours:
            for tool in peers:
                report.ratios.append(
                    Ratio(
                        scenario=scenario,
                        vs=f"{tool} (with {mine.removeprefix('storage-dsn sync ')})",
                        ratio=statistics.median(data[tool]) / statistics.median(data[mine]),
                    )
                )
        report.print_scenario(scenario)
    for mine in ours:
        share = statistics.median(wall[mine]) / statistics.median(noop[mine])
        report.ratios.append(
            Ratio(scenario=rerun, vs=f"full sync, {mine} (re-run share)", ratio=share)
        )
        print(f"  {mine}: no-op re-run is 1/{share:.1f} of the full sync")
