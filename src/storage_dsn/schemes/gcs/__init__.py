"""``gs:``, ``gcs:`` and ``gs+http:`` storages on Google Cloud Storage, via gcsfs.

Everything about GCS is in this package:

* :mod:`.parse`: the DSN grammar (Google's endpoint, ``endpoint_url=``, ``gs+http:`` for
  an emulator) into a config, and the rows ``check`` shows;
* :mod:`.backend`: :class:`GCSBackend`, gcsfs with the content type guessed from the key
  on every upload and ``exclusive`` writes as GCS's conditional create;
* :mod:`.errors`: gcsfs's errors as OSErrors that name the key and hold no secret;
* :mod:`.signing`: public URLs and V4 signed URLs from a service-account key, offline.

Importing it imports no gcsfs.
"""

from __future__ import annotations

from ..base import Scheme
from .backend import GCSBackend
from .parse import GOOGLE_ENDPOINT, PARAMS, details, parse_gcs
from .signing import gcs_urls

__all__ = ["GOOGLE_ENDPOINT", "PARAMS", "SCHEMES", "GCSBackend", "details", "parse_gcs"]

SCHEMES = tuple(
    Scheme(
        name=name,
        parse=parse_gcs,
        params=PARAMS,
        extra="gcs",
        requires=("gcsfs",),
        backend=GCSBackend,
        urls=gcs_urls,
        details=details,
    )
    for name in ("gs", "gcs", "gs+http")
)
