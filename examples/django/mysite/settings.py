"""Settings of the example project: media and static files from DSNs in the environment.

``DEFAULT_STORAGE_DSN`` names the media storage and ``STATIC_STORAGE_DSN`` the static
one; unset, both are folders under ``data/`` served by the app itself, so a fresh
checkout runs with no configuration. On a platform, the same code runs on a bucket.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("EXAMPLE_DATA_DIR", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)  # the database's folder

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me-0123456789")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "gallery",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.csrf"]},
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# The embedded defaults: folders under data/, served at /media/ and /static/.
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
LOCAL_MEDIA = f"file://{quote(str(DATA_DIR))}/media/?url=%2Fmedia%2F"
LOCAL_STATIC = f"file://{quote(str(DATA_DIR))}/static/?url=%2Fstatic%2F"
STORAGES = {
    "default": {
        "BACKEND": "storage_dsn.django.DSNStorage",
        "OPTIONS": {"env": "DEFAULT_STORAGE_DSN", "default": LOCAL_MEDIA},
    },
    "staticfiles": {
        "BACKEND": "storage_dsn.django.ManifestDSNStorage",
        "OPTIONS": {"env": "STATIC_STORAGE_DSN", "default": LOCAL_STATIC},
    },
}
