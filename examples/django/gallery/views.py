"""One page: the upload form, and the photos by their storage URL."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .forms import PhotoForm
from .models import Photo


def index(request: HttpRequest) -> HttpResponse:
    form = PhotoForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        form.save()  # the file goes to STORAGES["default"], under a name no one else has
        return redirect("index")
    photos = Photo.objects.order_by("-id")
    return render(request, "gallery/index.html", {"form": form, "photos": photos})
