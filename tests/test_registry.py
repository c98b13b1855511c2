"""register_scheme, the read-only registry view, and the entry-point group."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from storage_dsn import (
    StorageConfig,
    StorageDSNError,
    UnknownSchemeError,
    open_storage,
    parse_dsn,
    register_scheme,
)
from storage_dsn.dsn import DSNParts
from storage_dsn.registry import schemes


def parse_vault(parts: DSNParts) -> StorageConfig:
    """A scheme that keeps media in a named in-memory vault."""
    return parts.config(
        protocol="memory", root=f"/vault/{parts.host}", public_url=parts.public_base("")
    )


class TestRegister:
    def test_new_scheme(self) -> None:
        """A registered scheme parses and opens like a built-in one."""
        register_scheme("vault", parse_vault)
        storage = open_storage("vault://photos/?url=%2Fv%2F")
        storage.write_bytes("a.txt", b"in the vault")
        assert storage.read_bytes("a.txt") == b"in the vault"
        assert storage.url("a.txt") == "/v/a.txt"

    def test_params_are_checked(self) -> None:
        """A scheme's own parameters are accepted and others refused."""
        register_scheme("vault", parse_vault, params=["shelf"])
        parse_dsn("vault://photos/?shelf=3")
        with pytest.raises(StorageDSNError, match=r"accepted: domain, option\.NAME, shelf, url"):
            parse_dsn("vault://photos/?drawer=3")

    def test_no_clobber(self) -> None:
        """Registering an existing scheme is refused unless clobber=True."""
        with pytest.raises(StorageDSNError, match="already registered"):
            register_scheme("s3", parse_vault)
        register_scheme("s3", parse_vault, clobber=True)
        assert parse_dsn("s3://x/").protocol == "memory"

    def test_read_only_view(self) -> None:
        """The registry is a read-only mapping."""
        assert "s3" in schemes
        with pytest.raises(TypeError):
            schemes["x"] = schemes["s3"]  # type: ignore[index]

    def test_missing_requirement(self) -> None:
        """A scheme whose module is missing fails at open_storage with the extra's name."""
        register_scheme("vault", parse_vault, extra="vault", requires=["no_such_module_xyz"])
        parse_dsn("vault://a/")  # parsing never imports the backend
        with pytest.raises(StorageDSNError, match=r'pip install "storage-dsn\[vault\]"'):
            open_storage("vault://a/")


class TestEntryPoints:
    def test_plugin_scheme(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A package's entry point in storage_dsn.schemes adds a scheme without an import."""
        (tmp_path / "vault_plugin.py").write_text(
            textwrap.dedent(
                """
                from storage_dsn.registry import Scheme

                def parse(parts):
                    return parts.config(protocol="memory", root="/plugin/" + parts.host)

                SCHEME = Scheme(name="ignored", parse=parse)
                """
            )
        )
        dist = tmp_path / "vault_plugin-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vault-plugin\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(
            "[storage_dsn.schemes]\nvault = vault_plugin:SCHEME\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "vault_plugin", raising=False)
        assert parse_dsn("vault://shelf/").root == "/plugin/shelf"
        assert "vault" in schemes

    def test_unknown_after_plugins(self) -> None:
        """A scheme no plugin provides is still an UnknownSchemeError."""
        with pytest.raises(UnknownSchemeError):
            parse_dsn("nothing-here://x/")
