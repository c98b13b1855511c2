"""No secret in a repr, an error message or a log line, through a whole S3 workflow."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest

from storage_dsn import InvalidKeyError, NoPublicURLError, Storage, open_storage
from tests.conftest import SECRET


def _leaks(text: str) -> bool:
    return SECRET in text or quote(SECRET, safe="") in text


@pytest.mark.parametrize("kind", ["s3-mock", "s3-server", "s3-obstore"])
def test_workflow_logs_and_reprs(
    storage_factory: object, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Writing, reading, listing and failing at DEBUG log level never show the secret."""
    caplog.set_level(logging.DEBUG)
    storage: Storage = storage_factory(kind)  # type: ignore[operator]
    storage.write_bytes("a.txt", b"x")
    storage.read_bytes("a.txt")
    list(storage.list())
    storage.write_many({"b.txt": b"y"})
    texts = [repr(storage), str(storage.config), repr(storage.config), repr(storage.fs)]
    for attempt in (
        lambda: storage.read_bytes("missing"),
        lambda: storage.read_bytes("../x"),
        lambda: storage.stat("missing"),
    ):
        with pytest.raises((FileNotFoundError, InvalidKeyError)) as info:
            attempt()
        texts.append(f"{info.value} {info.value!r}")
    texts.extend(record.getMessage() for record in caplog.records)
    assert texts
    assert not [t for t in texts if _leaks(t)]


def test_no_url_error_names_the_parameter() -> None:
    """A storage without public URLs says which DSN parameter to add."""
    storage = open_storage("memory://nourl/")
    with pytest.raises(NoPublicURLError, match="url=") as info:
        storage.url("a.txt")
    assert "domain=" in str(info.value)
