"""Key validation: hostile keys are refused on every method before any I/O."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage_dsn import InvalidKeyError, Storage, open_storage
from storage_dsn.keys import MAX_KEY_BYTES, quote_key, validate_key, validate_prefix

HOSTILE = [
    "",
    "..",
    ".",
    "../etc/passwd",
    "a/../../etc/passwd",
    "a/./b",
    "a/..",
    "/etc/passwd",
    "//server/share",
    "a//b",
    "a/b/",
    "a\\..\\b",
    "..\\..\\windows\\win.ini",
    "C:\\Windows\\win.ini",
    "c:/windows/win.ini",
    "C:foo",
    "a\x00b",
    "a\nb",
    "a\rb",
    "\x1b[31mred",
    "a\x7fb",
    "a\u0085b",
    "x" * (MAX_KEY_BYTES + 1),
    "ü" * (MAX_KEY_BYTES // 2 + 1),
    "a\ud800b",
]
FINE = [
    "a.txt",
    ".well-known/x",
    "photos/2024/cat.jpg",
    "%2e%2e/x",  # a literal file name: nothing decodes it at this layer
    "..foo/bar..",
    "a b/ü.txt",
    "x+y=z?&#~.png",
    "x" * MAX_KEY_BYTES,
    "C/foo",
]


@pytest.mark.parametrize("key", HOSTILE, ids=repr)
def test_hostile_keys_refused(key: str) -> None:
    """Every hostile key is an InvalidKeyError."""
    with pytest.raises(InvalidKeyError):
        validate_key(key)


@pytest.mark.parametrize("key", FINE, ids=repr)
def test_fine_keys_accepted(key: str) -> None:
    """Ordinary and merely unusual keys are accepted unchanged."""
    assert validate_key(key) == key


def test_non_string() -> None:
    """bytes, None and Path are not keys."""
    for key in (b"a.txt", None, Path("a.txt")):
        with pytest.raises(InvalidKeyError, match="must be a str"):
            validate_key(key)


def test_prefixes() -> None:
    """Prefixes allow '' and a trailing '/', and nothing hostile."""
    assert validate_prefix("") == ""
    assert validate_prefix("photos/") == "photos/"
    assert validate_prefix("pho") == "pho"
    for bad in ("../", "/abs/", "a//", "a/../", "a\\b"):
        with pytest.raises(InvalidKeyError):
            validate_prefix(bad)


METHODS = [
    ("read_bytes", ()),
    ("write_bytes", (b"x",)),
    ("save", (io.BytesIO(b"x"),)),
    ("exists", ()),
    ("delete", ()),
    ("stat", ()),
    ("url", ()),
    ("local_path", ()),
    ("open", ()),
    ("open", ("wb",)),
]
ATTACKS = ["../escape.txt", "/abs.txt", "a/../../escape.txt", "..\\escape.txt", "C:\\x", "a\x00b"]


class TestEveryMethod:
    @pytest.mark.parametrize(
        ("method", "args"), METHODS, ids=[f"{m}{a!r}"[:30] for m, a in METHODS]
    )
    def test_refused_before_io(
        self, any_storage: Storage, tmp_path: Path, method: str, args: tuple[object, ...]
    ) -> None:
        """Each method refuses every attack and touches nothing outside the root."""
        before = sorted(p.name for p in tmp_path.iterdir())
        for key in ATTACKS:
            with pytest.raises(InvalidKeyError):
                getattr(any_storage, method)(key, *args)
        with pytest.raises(InvalidKeyError):
            any_storage.read_many(["ok", ATTACKS[0]])
        with pytest.raises(InvalidKeyError):
            any_storage.list("../")
        assert sorted(p.name for p in tmp_path.iterdir()) == before
        assert list(any_storage.list()) == []


class TestSymlinks:
    def test_symlink_out_of_root_not_followed(self, tmp_path: Path) -> None:
        """A symlink inside the root that points outside reads as missing, writes refuse."""
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_bytes(b"top secret")
        root = tmp_path / "media"
        root.mkdir()
        (root / "link").symlink_to(outside)
        (root / "file-link.txt").symlink_to(outside / "secret.txt")
        storage = open_storage(f"file://{root}/")
        for key in ("link/secret.txt", "file-link.txt"):
            with pytest.raises(FileNotFoundError):
                storage.read_bytes(key)
            with pytest.raises(FileNotFoundError):
                storage.open(key)
            with pytest.raises(FileNotFoundError):
                storage.stat(key)
            assert not storage.exists(key)
        with pytest.raises(FileNotFoundError):
            storage.write_bytes("link/new.txt", b"x")
        assert not (outside / "new.txt").exists()
        assert list(storage.list()) == []
        assert (outside / "secret.txt").read_bytes() == b"top secret"

    def test_symlink_inside_root_is_fine(self, tmp_path: Path) -> None:
        """A symlink that stays inside the root works like its target."""
        root = tmp_path / "media"
        (root / "real").mkdir(parents=True)
        (root / "real" / "a.txt").write_bytes(b"A")
        (root / "alias.txt").symlink_to(root / "real" / "a.txt")
        storage = open_storage(f"file://{root}/")
        assert storage.read_bytes("alias.txt") == b"A"
        assert list(storage.list()) == ["alias.txt", "real/a.txt"]


class TestQuoting:
    @pytest.mark.parametrize(
        ("key", "quoted"),
        [
            ("a b/ü.txt", "a%20b/%C3%BC.txt"),
            ("x+y=z?&#~.png", "x%2By%3Dz%3F%26%23~.png"),
            ("AZaz09-_.~/", "AZaz09-_.~/"),
            ("100%.txt", "100%25.txt"),
            ("%2e%2e/x", "%252e%252e/x"),
        ],
    )
    def test_s3_canonical(self, key: str, quoted: str) -> None:
        """Unreserved characters and '/' stay; every other UTF-8 byte is %XX."""
        assert quote_key(key) == quoted


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_validation_property(key: str) -> None:
    """Any string is accepted unchanged or refused with InvalidKeyError; accepted keys are safe."""
    try:
        assert validate_key(key) == key
    except InvalidKeyError:
        return
    segments = key.split("/")
    assert all(s not in ("", ".", "..") for s in segments)
    assert "\\" not in key
    assert "\x00" not in key
    assert not os.path.isabs(key)
    assert os.path.normpath(os.path.join("/root", key)).startswith("/root/")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40))
def test_quote_is_reversible(key: str) -> None:
    """quote_key output is ASCII and decodes back to the key."""
    from urllib.parse import unquote

    quoted = quote_key(key)
    assert quoted.isascii()
    assert unquote(quoted) == key


@settings(max_examples=1000, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from([*"/.\\:a%", "\x00", "\x1f", "\x7f", "\x85", "\x9f", "ü", "\ud800"]),
            st.characters(),
        ),
        max_size=40,
    )
)
def test_quoted_key_equals_validate_then_quote(key: str) -> None:
    """The one-pass quoted_key accepts and refuses exactly as validate_key + quote_key."""
    from storage_dsn.keys import quoted_key

    try:
        expected = quote_key(validate_key(key))
    except InvalidKeyError:
        with pytest.raises(InvalidKeyError):
            quoted_key(key)
    else:
        assert quoted_key(key) == expected
