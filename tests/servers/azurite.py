"""Azurite, Microsoft's Azure Storage emulator (its blob service), in its own process on a
free loopback port, shared by the session.

Azurite is an npm package: ``azurite-blob`` on the PATH is used, else the one installed
(``npm install``) into ``~/.cache/storage-dsn-tests/azurite`` on first use. It keeps its
data in memory, checks Shared Key signatures and SAS tokens, and is told not to send
telemetry. Accounts are addressed path style: ``http://127.0.0.1:PORT/ACCOUNT``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from . import free_port, wait_for_port

__all__ = ["ACCOUNT", "ACCOUNT_KEY", "QUOTED_ACCOUNT_KEY", "Azurite", "azurite", "blob_service"]

#: Azurite's well-known development account and key (public: in Microsoft's docs).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
QUOTED_ACCOUNT_KEY = quote(ACCOUNT_KEY, safe="")
PACKAGE = "azurite@3"


class Azurite:
    """A running Azurite blob service."""

    def __init__(self, port: int, started_in: float) -> None:
        #: ``127.0.0.1:PORT``.
        self.host = f"127.0.0.1:{port}"
        #: The development account's URL.
        self.account_url = f"http://{self.host}/{ACCOUNT}"
        #: Seconds from start to the first accepted request.
        self.started_in = started_in

    def new_container(self) -> str:
        """A fresh, empty container."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        blob_service(self.account_url).create_container(name)
        return name


def blob_service(account_url: str) -> Any:
    """An azure-storage-blob ``BlobServiceClient`` for the development account."""
    from azure.storage.blob import BlobServiceClient

    credential = {"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
    return BlobServiceClient(account_url, credential=credential)


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base, "storage-dsn-tests", "azurite")


def _azurite_blob() -> str:
    """The ``azurite-blob`` command, installed into the cache the first time."""
    found = shutil.which("azurite-blob")
    if found is not None:
        return found
    installed = _cache() / "node_modules" / ".bin" / "azurite-blob"
    if installed.exists():
        return str(installed)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("Azurite needs Node.js and npm: install them (apt-get install npm)")
    _cache().mkdir(parents=True, exist_ok=True)
    argv = [npm, "install", "--prefix", str(_cache()), "--no-audit", "--no-fund", PACKAGE]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not installed.exists():
        raise RuntimeError(f"npm install {PACKAGE} failed:\n{done.stderr[-2000:]}")
    return str(installed)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """An Azurite blob service on a free loopback port; fails (not skips) if it cannot start."""
    directory = tmp_path_factory.mktemp("azurite")
    port = free_port()
    argv = [
        _azurite_blob(),
        *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
        *("--loose", "--skipApiVersionCheck", "--disableTelemetry", "--silent"),
        # In memory: no files (with --inMemoryPersistence Azurite refuses --location, so
        # it runs in its own directory in case it writes anything).
        "--inMemoryPersistence",
    ]
    log_path = directory / "azurite.log"
    log = log_path.open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    try:
        try:
            wait_for_port(port, proc)
            server = Azurite(port, 0.0)
            blob_service(server.account_url).get_service_properties()  # answers and checks the key
        except Exception as exc:
            tail = log_path.read_bytes()[-2000:].decode(errors="replace")
            raise RuntimeError(f"Azurite did not start ({exc}); its log ends:\n{tail}") from None
        server.started_in = time.monotonic() - started
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
