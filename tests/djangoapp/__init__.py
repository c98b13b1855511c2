"""A Django project for the tests: settings, models with file fields, URLs.

:func:`configure` sets Django up once per process (an in-memory SQLite database, the
``Thing`` table created); the storages read their DSNs from the environment variables
below, which the tests set, so nothing here names a server.
"""

from __future__ import annotations

#: The model fields' storage, and the ``default`` storage.
MEDIA_ENV = "DJANGO_TEST_MEDIA_DSN"
#: The ``staticfiles`` storage (``ManifestDSNStorage``).
STATIC_ENV = "DJANGO_TEST_STATIC_DSN"
SECRET_KEY = "django-test-secret-key-not-for-production-0123456789"


def settings_dict() -> dict[str, object]:
    return {
        "DEBUG": False,
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": ["*"],
        "INSTALLED_APPS": ["django.contrib.staticfiles", "tests.djangoapp"],
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "ROOT_URLCONF": "tests.djangoapp.urls",
        "MIDDLEWARE": [],
        "MEDIA_URL": "/media/",
        "STATIC_URL": "/static/",
        "STATIC_ROOT": None,  # collectstatic writes to the staticfiles storage's DSN
        "STORAGES": {
            "default": {"BACKEND": "storage_dsn.django.DSNStorage", "OPTIONS": {"env": MEDIA_ENV}},
            "staticfiles": {
                "BACKEND": "storage_dsn.django.ManifestDSNStorage",
                "OPTIONS": {"env": STATIC_ENV},
            },
        },
    }


def configure() -> None:
    """Configure Django for this process, once; create the tables."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(**settings_dict())
    # Django 4.2's configure() records STORAGES' backends as the deprecated
    # DEFAULT_FILE_STORAGE/STATICFILES_STORAGE too, which then replace them without their
    # OPTIONS; a settings module is not affected. Forget those copies.
    for name in ("DEFAULT_FILE_STORAGE", "STATICFILES_STORAGE"):
        settings._wrapped.__dict__.pop(name, None)
    django.setup()
    from django.db import connection

    from .models import Thing

    with connection.schema_editor() as editor:
        editor.create_model(Thing)
