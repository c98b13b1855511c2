"""The gallery, then the media and static files (served here when they are local)."""

from __future__ import annotations

from django.urls import path
from gallery import views

from storage_dsn.django import media_urlpatterns

ONE_YEAR = 365 * 24 * 3600  # static names carry their content's hash

urlpatterns = [
    path("", views.index, name="index"),
    *media_urlpatterns(),
    *media_urlpatterns("staticfiles", max_age=ONE_YEAR),
]
