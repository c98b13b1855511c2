"""Scenarios: DSN parsing, public URLs and presigned URLs.

Peers: django-storage-url (``get_storage`` and ``storage.url()`` on the same DSN), boto3's
``generate_presigned_url`` and s3fs's ``url()``. Nothing here touches the network: every
tool computes URLs locally.
"""

from __future__ import annotations

import os
from urllib.parse import quote

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


def _run_s3_signers(report: Report, *, scale: float, rounds: int) -> None:
    import boto3
    from botocore.config import Config

    from storage_dsn import open_storage
    from storage_dsn.urls import content_disposition

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    ours = open_storage(SIGNED_DSN)
    client = boto3.client(
        "s3",
        region_name="eu-central-1",
        endpoint_url="https://s3.eu-central-1.amazonaws.com",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
    )
    number = max(20, int(2000 * scale))
    name = "Résumé 2026.pdf"
    disposition = content_disposition(name)
    report.compare(
        "S3 presigned URL with download name and type",
        (
            "storage-dsn Storage.url",
            lambda: ours.url(KEY, download_name=name, content_type="application/pdf"),
        ),
        [
            (
                "boto3 generate_presigned_url",
                lambda: client.generate_presigned_url(
                    "get_object",
                    Params={
                        "Bucket": "my-bucket",
                        "Key": "media/" + KEY,
                        "ResponseContentDisposition": disposition,
                        "ResponseContentType": "application/pdf",
                    },
                    ExpiresIn=3600,
                ),
            )
        ],
        number=number,
        rounds=rounds,
    )
    report.compare(
        "S3 presigned upload URL (PUT) with content type",
        ("storage-dsn Storage.upload_url", lambda: ours.upload_url(KEY, content_type="image/jpeg")),
        [
            (
                "boto3 generate_presigned_url('put_object')",
                lambda: client.generate_presigned_url(
                    "put_object",
                    Params={
                        "Bucket": "my-bucket",
                        "Key": "media/" + KEY,
                        "ContentType": "image/jpeg",
                    },
                    ExpiresIn=3600,
                ),
            )
        ],
        number=number,
        rounds=rounds,
    )
    max_size = 10 * 2**20
    report.compare(
        "S3 POST policy form (any name under a prefix, size and type limits)",
        (
            "storage-dsn Storage.upload_form",
            lambda: ours.upload_form("uploads/", max_size=max_size, content_type="image/"),
        ),
        [
            (
                "boto3 generate_presigned_post",
                lambda: client.generate_presigned_post(
                    "my-bucket",
                    "media/uploads/${filename}",
                    Conditions=[
                        ["starts-with", "$key", "media/uploads/"],
                        ["content-length-range", 0, max_size],
                        ["starts-with", "$Content-Type", "image/"],
                    ],
                    ExpiresIn=3600,
                ),
            )
        ],
        number=number,
        rounds=rounds,
    )


# Azurite's well-known development key (public: in Microsoft's docs).
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURE_DSN = (
    f"az://devstoreaccount1:{quote(AZURE_KEY, safe='')}@blob.core.windows.net/media/?qs_auth=true"
)


def run_signing(report: Report, *, scale: float, rounds: int) -> None:
    """S3 URLs with overrides, upload URLs and POST forms, Azure SAS and GCS V4 URLs: ours
    and the official SDKs' for the same object and inputs."""
    _run_s3_signers(report, scale=scale, rounds=rounds)
    _run_azure_sas(report, scale=scale, rounds=rounds)
    _run_gcs_v4(report, scale=scale, rounds=rounds)


def _run_azure_sas(report: Report, *, scale: float, rounds: int) -> None:
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import BlobClient, generate_blob_sas

    from storage_dsn import open_storage
    from storage_dsn.urls import content_disposition

    ours = open_storage(AZURE_DSN)
    account_url = "https://devstoreaccount1.blob.core.windows.net"

    def sdk(**overrides: str) -> str:
        # What a user of the SDK writes: the SAS, then the blob's URL with it.
        sas = generate_blob_sas(
            "devstoreaccount1",
            "media",
            KEY,
            account_key=AZURE_KEY,
            permission="r",
            expiry=datetime.now(timezone.utc) + timedelta(hours=1),
            protocol="https",
            **overrides,
        )
        return str(BlobClient(account_url, "media", KEY, credential=sas).url)

    def sas_only() -> None:
        generate_blob_sas(
            "devstoreaccount1",
            "media",
            KEY,
            account_key=AZURE_KEY,
            permission="r",
            expiry=datetime.now(timezone.utc) + timedelta(hours=1),
            protocol="https",
        )

    number = max(50, int(5000 * scale))
    report.compare(
        "Azure SAS URL (read, 1 h)",
        ("storage-dsn Storage.url", lambda: ours.url(KEY)),
        [
            ("azure-storage-blob generate_blob_sas + BlobClient.url", sdk),
            ("azure-storage-blob generate_blob_sas (token only)", sas_only),
        ],
        number=number,
        rounds=rounds,
    )
    name = "Résumé 2026.pdf"
    disposition = content_disposition(name)
    report.compare(
        "Azure SAS URL with download name and type",
        (
            "storage-dsn Storage.url",
            lambda: ours.url(KEY, download_name=name, content_type="application/pdf"),
        ),
        [
            (
                "azure-storage-blob generate_blob_sas + BlobClient.url",
                lambda: sdk(content_disposition=disposition, content_type="application/pdf"),
            )
        ],
        number=number,
        rounds=rounds,
    )


def _service_account() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "bench",
        "private_key": pem,
        "client_email": "bench@bench.iam.gserviceaccount.com",
        "token_uri": "http://127.0.0.1:9/token",
    }


def _run_gcs_v4(report: Report, *, scale: float, rounds: int) -> None:
    import json
    from datetime import timedelta
    from urllib.parse import quote

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from google.cloud import storage as gcs
    from google.oauth2 import service_account

    from storage_dsn import open_storage

    info = _service_account()
    ours = open_storage("gs://media/?qs_auth=true&option.token=" + quote(json.dumps(info), safe=""))
    credentials = service_account.Credentials.from_service_account_info(info)
    blob = gcs.Client(project="bench", credentials=credentials).bucket("media").blob(KEY)
    key = load_pem_private_key(info["private_key"].encode(), password=None)
    message = b"x" * 200  # a V4 string-to-sign is about this long

    def rsa_only() -> None:
        key.sign(message, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]

    def sdk(**kwargs: str) -> None:
        blob.generate_signed_url(
            version="v4", expiration=timedelta(hours=1), credentials=credentials, **kwargs
        )

    number = max(20, int(1000 * scale))
    report.compare(
        "GCS V4 signed URL (read, 1 h)",
        ("storage-dsn Storage.url", lambda: ours.url(KEY)),
        [("google-cloud-storage Blob.generate_signed_url(version='v4')", sdk)],
        variants=[("the RSA-2048 signature alone (cryptography)", rsa_only)],
        number=number,
        rounds=rounds,
    )
    report.compare(
        "GCS V4 signed upload URL with content type",
        ("storage-dsn Storage.upload_url", lambda: ours.upload_url(KEY, content_type="image/jpeg")),
        [
            (
                "google-cloud-storage Blob.generate_signed_url(version='v4', method='PUT')",
                lambda: sdk(method="PUT", content_type="image/jpeg"),
            )
        ],
        number=number,
        rounds=rounds,
    )
