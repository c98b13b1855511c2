"""The test project under a WSGI server (gunicorn): media from ``DJANGO_TEST_MEDIA_DSN``."""

from __future__ import annotations

from django.core.wsgi import get_wsgi_application

from . import configure

configure()
application = get_wsgi_application()
