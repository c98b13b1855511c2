"""The test project's URLs: a page of the app, then the media patterns."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from storage_dsn.django import media_urlpatterns


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


urlpatterns = [path("hello", hello), *media_urlpatterns()]
