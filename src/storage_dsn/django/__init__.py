"""Django integration: storages over a DSN, and the media server's URL patterns.

::

    # settings.py
    STORAGES = {
        "default": {"BACKEND": "storage_dsn.django.DSNStorage"},  # DEFAULT_STORAGE_DSN
        "staticfiles": {
            "BACKEND": "storage_dsn.django.ManifestDSNStorage",
            "OPTIONS": {"env": "STATIC_STORAGE_DSN"},
        },
    }

    # urls.py
    urlpatterns = [..., *media_urlpatterns()]

See :mod:`storage_dsn.django.storage` and :mod:`storage_dsn.django.urls`.
"""

from __future__ import annotations

from .storage import DSNFile, DSNStorage, ManifestDSNStorage
from .urls import media_urlpatterns

__all__ = ["DSNFile", "DSNStorage", "ManifestDSNStorage", "media_urlpatterns"]
