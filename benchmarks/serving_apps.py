"""The three media-serving apps the serving benchmark compares, picked by BENCH_APP.

Each serves the files in BENCH_MEDIA at /media/ from a minimal Flask app:
``ours`` (storage_dsn.flask.Media), ``whitenoise`` (WhiteNoise with autorefresh=True, what
media needs since files appear at run time) and ``send_from_directory`` (Flask's own).
"""

from __future__ import annotations

import os

from flask import Flask, send_from_directory

MEDIA = os.environ["BENCH_MEDIA"]
KIND = os.environ["BENCH_APP"]

app = Flask(__name__)

if KIND == "ours":
    from storage_dsn.flask import Media

    app.config["STORAGE_DSN"] = f"file://{MEDIA}/?url=%2Fmedia%2F"
    Media(app)
elif KIND == "whitenoise":
    from whitenoise import WhiteNoise

    app.wsgi_app = WhiteNoise(app.wsgi_app, root=MEDIA, prefix="media/", autorefresh=True)  # type: ignore[method-assign]
elif KIND == "send_from_directory":

    @app.get("/media/<path:key>")
    def media(key: str):  # type: ignore[no-untyped-def]
        return send_from_directory(MEDIA, key)

else:  # pragma: no cover
    raise SystemExit(f"unknown BENCH_APP {KIND!r}")
