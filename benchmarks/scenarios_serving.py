"""Scenario: serving media over HTTP, gunicorn (2 sync workers) under wrk on loopback.

storage-dsn's Media against whitenoise (autorefresh=True) and Flask's send_from_directory,
on a 64 KiB and a 1 MiB file and on 304 revalidation of the 64 KiB file. The server is
pinned to one core and wrk to the other. Rounds are
interleaved tool by tool; a round with any socket error or unexpected status is invalid
and stops the run. Besides requests per second, each round records the CPU seconds the
server's workers used per 1,000 requests.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.servers import ROOT, free_port, running

from .harness import Ratio, Report

TOOLS = ["ours", "whitenoise", "send_from_directory"]
# With two cores or more, the server's workers get core 1 and wrk core 0, so the server
# (not a client competing with it for CPU) is what is measured.
PINNED = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
SERVER_CPUS = ["taskset", "-c", "1"] if PINNED else []
CLIENT_CPUS = ["taskset", "-c", "0"] if PINNED else []
LABELS = {
    "nginx": "nginx sendfile (ceiling)",
    "ours": "storage-dsn Media",
    "whitenoise": "whitenoise (autorefresh)",
    "send_from_directory": "Flask send_from_directory",
}


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include /etc/nginx/mime.types;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        location /media/ {{ alias {media}/; etag on; }}
    }}
}}
"""


@contextmanager
def nginx(media: str) -> Iterator[tuple[str, int]]:
    """nginx serving the same files with sendfile: the ceiling, not a peer."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp, "nginx.conf")
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, media=media))
        with running([*SERVER_CPUS, "nginx", "-c", str(conf), "-p", tmp], port) as proc:
            yield f"http://127.0.0.1:{port}", proc.pid


@contextmanager
def serve(kind: str, media: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    argv = [
        *SERVER_CPUS,
        *(sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "sync"),
        *("--bind", f"127.0.0.1:{port}", "--log-level", "warning", "benchmarks.serving_apps:app"),
    ]
    # The workers import the app as part of this package, from the repository's root.
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "BENCH_APP": kind, "BENCH_MEDIA": media, "PYTHONPATH": pythonpath}
    with running(argv, port, cwd=ROOT, env=env) as proc:
        yield f"http://127.0.0.1:{port}", proc.pid


def worker_cpu(master: int) -> float:
    """CPU seconds used so far by the gunicorn master's worker processes."""
    total = 0.0
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def wrk(url: str, seconds: float, headers: dict[str, str]) -> tuple[float, int]:
    args = [*CLIENT_CPUS, "wrk", "-t1", "-c4", f"-d{seconds}s", url]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    if "Socket errors" in out or "Non-2xx or 3xx" in out:
        raise RuntimeError(f"invalid wrk run against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, total


def run_serving(report: Report, *, quick: bool, rounds: int) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("the serving benchmark needs wrk: apt-get install wrk")
    seconds = 1 if quick else 4
    with tempfile.TemporaryDirectory() as media, ExitStack() as stack:
        os.chmod(media, 0o755)  # noqa: S103 (nginx workers run unprivileged; test data)
        Path(media, "photos").mkdir()
        Path(media, "photos", "64k.jpg").write_bytes(os.urandom(64 * 1024))
        Path(media, "photos", "1m.jpg").write_bytes(os.urandom(1024 * 1024))
        servers = {kind: stack.enter_context(serve(kind, media)) for kind in TOOLS}
        if shutil.which("nginx"):
            servers["nginx"] = stack.enter_context(nginx(media))
        cases = [
            ("serve 64 KiB file (gunicorn, 2 workers)", "photos/64k.jpg", False),
            ("serve 1 MiB file (gunicorn, 2 workers)", "photos/1m.jpg", False),
            ("304 revalidation of 64 KiB file", "photos/64k.jpg", True),
        ]
        for scenario, key, revalidate in cases:
            kinds = [k for k in (*TOOLS, "nginx") if k in servers]
            rps: dict[str, list[float]] = {k: [] for k in kinds}
            cpu: dict[str, list[float]] = {k: [] for k in kinds}
            headers: dict[str, dict[str, str]] = {}
            for kind, (base, _) in servers.items():
                with urllib.request.urlopen(f"{base}/media/{key}") as r:
                    assert r.status == 200
                    etag = r.headers["ETag"]
                headers[kind] = {"If-None-Match": etag} if revalidate else {}
            for _ in range(rounds):
                for kind in kinds:
                    base, pid = servers[kind]
                    before = worker_cpu(pid)
                    rate, total = wrk(f"{base}/media/{key}", seconds, headers[kind])
                    rps[kind].append(rate)
                    cpu[kind].append((worker_cpu(pid) - before) / total * 1000)
            for kind in kinds:
                report.add(
                    scenario, LABELS[kind], "requests per second", "req/s", rps[kind], cpu[kind]
                )
            ours = statistics.median(rps["ours"])
            for kind in TOOLS[1:]:
                report.ratios.append(
                    Ratio(
                        scenario=scenario,
                        vs=LABELS[kind],
                        ratio=ours / statistics.median(rps[kind]),
                    )
                )
            report.print_scenario(scenario)
            time.sleep(0.5)
