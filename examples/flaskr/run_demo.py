"""Run the example app for the demo: ``python examples/flaskr/run_demo.py [s3]``.

Default: media in ``./data/media`` (``DEFAULT_STORAGE_DSN`` if set), served at ``/media/``.
``s3``: starts a moto S3 server on a free loopback port, creates a bucket and runs the app
on an ``s3+http://`` DSN, so ``/media/<key>`` redirects to the bucket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    moto = None
    if argv[:1] == ["s3"]:
        moto, dsn = start_moto()
        os.environ["DEFAULT_STORAGE_DSN"] = dsn
    else:
        os.environ.setdefault("DEFAULT_STORAGE_DSN", "file:./data/media/?url=%2Fmedia%2F")
    from flaskr import create_app

    app = create_app()
    print(f"storage: {app.extensions['storage_dsn'].storage.config}")  # secrets masked
    print(f"demo app: http://{HOST}:{PORT}/  (Ctrl-C to stop)", flush=True)
    try:
        app.run(host=HOST, port=PORT, use_reloader=False)
    finally:
        if moto is not None:
            moto.terminate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
