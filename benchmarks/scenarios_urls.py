"""Scenarios: DSN parsing, public URLs and presigned URLs.

Peers: django-storage-url (``get_storage`` and ``storage.url()`` on the same DSN), boto3's
``generate_presigned_url`` and s3fs's ``url()``. Nothing here touches the network: every
tool computes URLs locally.
"""

from __future__ import annotations

import os

from .harness import Report

KEY = "photos/2026/a b/ü.jpg"  # needs percent-encoding: the contract's example
ASCII_KEY = "photos/2026/cat-0042.jpg"  # what secure_filename-style uploads produce
SECRET = "wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY"
PUBLIC_DSN = f"s3://AKIAEXAMPLE:{SECRET}@my-bucket.s3.eu-central-1.amazonaws.com/media/?auth=s3v4&domain=cdn.example.com"
SIGNED_DSN = f"s3://AKIAEXAMPLE:{SECRET}@my-bucket.s3.eu-central-1.amazonaws.com/media/?auth=s3v4&qs_auth=true"


def _django() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(USE_TZ=True)
        django.setup()


def run_parse(report: Report, *, scale: float, rounds: int) -> None:
    from django_storage_url import get_storage

    from storage_dsn import open_storage, parse_dsn, storage

    _django()

    def open_cold() -> None:
        storage.clear_cache()
        open_storage(PUBLIC_DSN)

    report.compare(
        "parse: DSN to storage object",
        ("storage-dsn open_storage (cold: parse and build)", open_cold),
        [("django-storage-url get_storage", lambda: get_storage(PUBLIC_DSN))],
        variants=[
            ("storage-dsn parse_dsn only", lambda: parse_dsn(PUBLIC_DSN)),
            (
                "storage-dsn open_storage (warm: cached, per request)",
                lambda: open_storage(PUBLIC_DSN),
            ),
        ],
        number=max(50, int(2000 * scale)),
        rounds=rounds,
    )


def run_urls(report: Report, *, scale: float, rounds: int) -> None:
    import boto3
    import s3fs
    from botocore.config import Config
    from django_storage_url import get_storage

    from storage_dsn import open_storage

    _django()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    ours_public = open_storage(PUBLIC_DSN)
    theirs_public = get_storage(PUBLIC_DSN)
    assert ours_public.url(KEY) == "https://cdn.example.com/media/photos/2026/a%20b/%C3%BC.jpg"
    assert ours_public.url(KEY) == theirs_public.url(KEY)
    for label, key in (("ASCII key", ASCII_KEY), ("non-ASCII key", KEY)):
        report.compare(
            f"public URL (domain=), {label}",
            ("storage-dsn Storage.url", lambda key=key: ours_public.url(key)),
            [("django-storage-url storage.url", lambda key=key: theirs_public.url(key))],
            number=max(200, int(20000 * scale)),
            rounds=rounds,
        )

    ours_signed = open_storage(SIGNED_DSN)
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    client = boto3.client(
        "s3",
        region_name="eu-central-1",
        endpoint_url="https://s3.eu-central-1.amazonaws.com",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
    )
    fs = s3fs.S3FileSystem(
        key="AKIAEXAMPLE",
        secret=secret,
        endpoint_url="https://s3.eu-central-1.amazonaws.com",
        client_kwargs={"region_name": "eu-central-1"},
        skip_instance_cache=True,
    )
    theirs_signed = get_storage(SIGNED_DSN)
    params = {"Bucket": "my-bucket", "Key": "media/" + KEY}
    report.compare(
        "presigned URL (SigV4, 1 h)",
        ("storage-dsn Storage.url", lambda: ours_signed.url(KEY)),
        [
            (
                "boto3 generate_presigned_url",
                lambda: client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600),
            ),
            ("s3fs S3FileSystem.url", lambda: fs.url("my-bucket/media/" + KEY, expires=3600)),
            ("django-storage-url storage.url (qs_auth)", lambda: theirs_signed.url(KEY)),
        ],
        number=max(20, int(2000 * scale)),
        rounds=rounds,
    )
