"""The Flask tutorial's app factory, configured from the environment (twelve-factor).

Media go wherever ``DEFAULT_STORAGE_DSN`` says: local files in development, a bucket in the
cloud, with the same code.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort, flash, redirect, render_template, request, url_for

from storage_dsn import NoPublicURLError, UploadForm
from storage_dsn.flask import Media

media = Media()
UPLOADS = "uploads/"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    # create and configure the app
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY", "dev"),
        MAX_CONTENT_LENGTH=int(os.environ.get("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)),
    )
    if test_config is None:
        # load the instance config, if it exists, when not testing
        app.config.from_pyfile("config.py", silent=True)
    else:
        # load the test config if passed in
        app.config.from_mapping(test_config)

    # ensure the instance folder exists
    os.makedirs(app.instance_path, exist_ok=True)

    # STORAGE_DSN, else DEFAULT_STORAGE_DSN, else instance/media/ served at /media/
    media.init_app(app)

    @app.route("/hello")
    def hello() -> str:
        return "Hello, World!"

    @app.get("/")
    def index() -> str:
        keys = list(media.storage.list(UPLOADS))
        return render_template(
            "index.html", keys=keys, storage=media.storage.config, direct=direct_form()
        )

    def direct_form() -> UploadForm | None:
        """A form that sends images straight to the storage: an S3 POST policy in the
        cloud, the app's own signed equivalent for local media; None where the storage
        cannot sign one."""
        try:
            return media.upload_form(
                UPLOADS, max_size=app.config["MAX_CONTENT_LENGTH"], content_type="image/"
            )
        except NoPublicURLError:
            return None

    @app.post("/")
    def upload() -> Any:
        file = request.files.get("image")
        if file is None or not file.filename:
            flash("Choose an image to upload.")
            return redirect(url_for("index"))
        if not (file.mimetype or "").startswith("image/"):
            abort(400, "only images can be uploaded here")
        key = media.save(file, prefix=UPLOADS)
        flash(f"Stored {key}.")
        return redirect(url_for("index"))

    return app
