"""A minimal app for the gunicorn tests: media from MEDIA_TEST_DSN, served at /media/."""

from __future__ import annotations

import os

from flask import Flask

from storage_dsn.flask import Media

app = Flask(__name__, instance_path=os.environ.get("MEDIA_TEST_INSTANCE", "/tmp"))
app.config["STORAGE_DSN"] = os.environ["MEDIA_TEST_DSN"]
app.config["SECRET_KEY"] = os.environ.get("MEDIA_TEST_SECRET_KEY")
Media(app)


@app.get("/hello")
def hello() -> str:
    return "hello"
