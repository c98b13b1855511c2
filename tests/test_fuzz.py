"""Hostile and random input, generated with Hypothesis: every DSN, key and ``expires``
either works or raises a StorageDSNError subclass with a message, never another exception,
never with a secret in it, and a presigned URL never claims an impossible lifetime.

``STORAGE_DSN_FUZZ_EXAMPLES`` sets the examples per test (default 400; the red team's
run was 300,000 in all).
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage_dsn import (
    InvalidKeyError,
    NoPublicURLError,
    StorageDSNError,
    open_storage,
    parse_dsn,
)
from storage_dsn.registry import schemes
from storage_dsn.storage import make_resolver

EXAMPLES = int(os.environ.get("STORAGE_DSN_FUZZ_EXAMPLES", "400"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SECRET = "Fuzz5ecret/+Value"

# Characters that have broken parsers before: brackets (IPv6), '@', '%', surrogates,
# controls, quotes, unicode letters.
NASTY = st.sampled_from(
    [
        "",
        "[",
        "]",
        "@",
        ":",
        "%",
        "%zz",
        "%C3",
        "\ud800",
        "\x00",
        "\n",
        "'",
        '"',
        "ü",
        "/",
        "?",
        "#",
        "&",
        "=",
        "+",
        " ",
        "..",
    ]
)
PIECE = st.one_of(st.text(max_size=12), NASTY, st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True))


@st.composite
def dsns(draw: Any) -> str:
    """DSN-shaped strings: a scheme (real or not), maybe credentials, a host, a path and
    a query, each part possibly hostile."""
    scheme = draw(st.one_of(st.sampled_from(sorted(schemes)), st.text(max_size=6)))
    user = draw(st.one_of(st.just(""), PIECE))
    password = draw(st.sampled_from(["", SECRET, quote(SECRET, safe="")]))
    host = draw(st.lists(PIECE, max_size=3).map("".join))
    port = draw(st.one_of(st.just(""), st.integers(-5, 70000).map(lambda p: f":{p}")))
    path = draw(st.lists(PIECE, max_size=4).map("/".join))
    names = st.sampled_from(
        [
            "url",
            "domain",
            "qs_auth",
            "expires",
            "acl",
            "region",
            "auth",
            "engine",
            "endpoint_url",
            "option.token",
            "project",
            "fsync",
            "x",
        ]
    )
    query = draw(st.lists(st.tuples(names, PIECE), max_size=3))
    userinfo = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    text = f"{scheme}://{userinfo}{host}{port}/{path}"
    if query:
        text += "?" + "&".join(f"{k}={v}" for k, v in query)
    return text


def attempt(call: Any, expected: type[Exception]) -> tuple[Any, Exception | None]:
    """``(result, None)``, or ``(None, exc)`` for an ``expected`` exception; any other
    exception propagates and fails the test."""
    try:
        return call(), None
    except expected as exc:
        return None, exc


def _no_secret(exc: BaseException) -> None:
    text = f"{exc} {exc!r}"
    assert SECRET not in text
    assert quote(SECRET, safe="") not in text


@FUZZ
@given(st.one_of(dsns(), st.text(max_size=80)))
def test_any_dsn_parses_or_says_why(dsn: str) -> None:
    """parse_dsn gives a config or an InvalidDSNError with a message; nothing else."""
    config, exc = attempt(lambda: parse_dsn(dsn), StorageDSNError)
    if exc is not None:
        assert str(exc)
        _no_secret(exc)
    else:
        assert SECRET not in repr(config) + str(config) + config.redacted()


KEYS = st.one_of(
    st.text(max_size=40),
    st.lists(PIECE, min_size=1, max_size=5).map("/".join),
    st.integers(),
    st.none(),
    st.binary(max_size=10),
)


@FUZZ
@given(key=KEYS)
def test_any_key_gives_a_url_or_says_why(key: Any) -> None:
    """url() of any key: a URL, or InvalidKeyError (for non-str keys too)."""
    storage = open_storage("s3://K:S@bucket.s3.amazonaws.com/media/?domain=cdn.example.com")
    url, exc = attempt(lambda: storage.url(key), InvalidKeyError)
    if exc is not None:
        assert str(exc)
    else:
        assert url.startswith("https://cdn.example.com/media/")
        assert not re.search(r"[\x00-\x20\x7f-\uffff]", url)


EXPIRES = st.one_of(
    st.integers(min_value=-(10**31), max_value=10**31),
    st.integers(min_value=-2, max_value=700_000),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)


@pytest.mark.parametrize("auth", ["s3v4", "s3"])
@FUZZ
@given(expires=EXPIRES)
def test_any_expires_is_a_possible_lifetime_or_refused(auth: str, expires: Any) -> None:
    """A presigned URL lives 1 s to 7 days, as S3 allows; anything else is refused."""
    config = parse_dsn(
        f"s3://K:{quote(SECRET, safe='')}@b.s3.amazonaws.com/?qs_auth=true&auth={auth}"
    )
    resolve = make_resolver(config, environ={}, clock=lambda: 1_800_000_000.0)
    url, exc = attempt(lambda: resolve("a.txt", expires), NoPublicURLError)
    if exc is not None:
        assert "expires" in str(exc)
        _no_secret(exc)
        assert expires is not None
        return
    query = parse_qs(urlsplit(url).query)
    if auth == "s3v4":
        lifetime = int(query["X-Amz-Expires"][0])
    else:
        lifetime = int(query["Expires"][0]) - 1_800_000_000
    assert 1 <= lifetime <= 7 * 24 * 3600
    assert SECRET not in url
