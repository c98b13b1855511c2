"""A photo: a title and an uploaded file in the default storage."""

from __future__ import annotations

from django.db import models


class Photo(models.Model):
    title = models.CharField(max_length=100)
    image = models.FileField(upload_to="photos/")

    def __str__(self) -> str:
        return self.title
