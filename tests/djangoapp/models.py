"""Models with file fields, as Django's own storage tests have them, on DSN storages."""

from __future__ import annotations

import random
from typing import Any

from django.db import models

from storage_dsn.django import DSNStorage

from . import MEDIA_ENV


class CustomValidNameStorage(DSNStorage):
    """Appends ``_valid`` to every name, to show ``get_valid_name`` is called."""

    def get_valid_name(self, name: str) -> str:
        return name + "_valid"


#: Every field's storage: the DSN in ``MEDIA_ENV``, read on first use.
temp_storage = DSNStorage(env=MEDIA_ENV)
custom_storage = CustomValidNameStorage(env=MEDIA_ENV)


def random_upload_to(instance: Any, filename: str) -> str:
    # The directory is chosen once per save, however often the name is asked for.
    return f"{random.randint(100, 999)}/{filename}"


def custom_upload_to(instance: Any, filename: str) -> str:
    return "foo/" + filename


class Thing(models.Model):
    normal = models.FileField(storage=temp_storage, upload_to="tests")
    custom = models.FileField(storage=temp_storage, upload_to=custom_upload_to)
    random = models.FileField(storage=temp_storage, upload_to=random_upload_to)
    custom_valid_name = models.FileField(storage=custom_storage, upload_to=random_upload_to)
    default = models.FileField(storage=temp_storage, upload_to="tests", default="tests/default.txt")
    empty = models.FileField(storage=temp_storage)
    limited_length = models.FileField(storage=temp_storage, upload_to="tests", max_length=20)
    extended_length = models.FileField(storage=temp_storage, upload_to="tests", max_length=1024)

    class Meta:
        app_label = "djangoapp"
