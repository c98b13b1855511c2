"""Let s3fs (aiobotocore) run against moto's in-process ``mock_aws``.

moto answers botocore's ``before-send`` event with a synchronous response; aiobotocore
awaits the response's body. This adapter wraps moto's handler: called from inside a
running event loop (aiobotocore), it returns an ``AioAWSResponse`` whose body can be
awaited; called from plain botocore, it returns moto's response unchanged. Request bodies
must be plain bytes, which ``AWS_REQUEST_CHECKSUM_CALCULATION=when_required`` ensures (no
aws-chunked streaming bodies).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


class _StreamReader:
    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)
        self._size = len(data)

    async def read(self, n: int = -1) -> bytes:
        return self._buffer.read(-1 if n is None or n < 0 else n)

    def at_eof(self) -> bool:
        return self._buffer.tell() >= self._size


class _RawResponse:
    """The parts of an aiohttp ClientResponse that aiobotocore uses."""

    def __init__(self, url: str, body: bytes) -> None:
        self.url = url
        self.content = _StreamReader(body)

    async def read(self) -> bytes:
        return await self.content.read()

    def close(self) -> None:
        pass

    def release(self) -> None:
        pass


@contextmanager
def aio_mock_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``mock_aws()`` that also serves aiobotocore (and so s3fs) in-process."""
    from aiobotocore.awsrequest import AioAWSResponse
    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__

    def call(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return original(self, event_name, request, **kwargs)
        if not self.enabled:
            return None
        response = self.process_request(request)
        if response is None:
            return None
        status, headers, body = response
        data = body.encode() if isinstance(body, str) else bytes(body or b"")
        return AioAWSResponse(request.url, status, headers, _RawResponse(request.url, data))

    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    monkeypatch.setattr(BotocoreStubber, "__call__", call)
    with mock_aws():
        yield
