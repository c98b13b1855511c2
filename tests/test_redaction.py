"""Secrets scrubbed in every encoding, from text, log records and exceptions."""

from __future__ import annotations

import base64
import json
import logging
import re
import traceback
from urllib.parse import quote, quote_plus

import pytest

from storage_dsn import redaction
from storage_dsn.redaction import Secret, SecretFilter, guarded, remember, scrub

SECRET = "c0rpus/Redact+Me=Now%7 ok"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----\n"
)


class TestScrub:
    @pytest.mark.parametrize(
        "shown",
        [
            SECRET,
            quote(SECRET, safe=""),
            quote(SECRET),
            re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(SECRET, safe="")),
            quote_plus(SECRET),
            json.dumps(SECRET),
            repr(SECRET),
            base64.b64encode(SECRET.encode()).decode(),
            base64.urlsafe_b64encode(SECRET.encode()).decode(),
            base64.b64encode(f"user:{SECRET}".encode()).decode(),  # HTTP Basic
            base64.b64encode(f"us:{SECRET}".encode()).decode(),
            base64.b64encode(f"u:{SECRET}".encode()).decode(),
        ],
        ids=[
            "raw",
            "quote",
            "quote-slash",
            "quote-lower",
            "quote_plus",
            "json",
            "repr",
            "base64",
            "urlsafe-base64",
            "base64-offset-2",
            "base64-offset-0",
            "base64-offset-1",
        ],
    )
    def test_every_encoding(self, shown: str) -> None:
        """A remembered secret is masked however it was encoded, inside any text."""
        remember([SECRET])
        text = scrub(f"before {shown} after")
        assert shown not in text
        assert "c0rpus" not in text

    @pytest.mark.parametrize(
        "shown",
        [PEM, json.dumps(PEM), quote_plus(PEM), quote(json.dumps({"private_key": PEM}))],
        ids=["pem", "json", "quote_plus", "quoted-json"],
    )
    def test_a_key_by_its_lines(self, shown: str) -> None:
        """A PEM key is masked whole and by each of its lines, in each encoding."""
        remember([PEM])
        text = scrub(shown)
        assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj" not in text
        assert "MzEfYyjiWA4R4" not in text

    def test_short_values(self) -> None:
        """A value too short to be a credential is left alone; a short one is masked
        where it stands alone, not inside a word (it would garble output)."""
        remember(["abc", "", "anon"])
        assert scrub("abc abc") == "abc abc"
        assert scrub("token=anon, anonymous") == "token=***, anonymous"

    def test_undecodable_environment_value(self) -> None:
        """A secret from os.environ with undecodable bytes (surrogates) is remembered."""
        remember(["abc\udcffdefgh"])
        assert scrub("x abc\udcffdefgh") == "x ***"

    def test_extra(self) -> None:
        """Values given to one call are masked in it only."""
        assert scrub(f"x {quote_plus(SECRET)}", [SECRET]) == "x ***"
        assert scrub(SECRET) == SECRET

    def test_secret_repr(self) -> None:
        """A Secret shows as '***' in a repr, and is its value everywhere else."""
        value = Secret(SECRET)
        assert repr(value) == "'***'"
        assert repr([value]) == "['***']"
        assert str(value) == SECRET
        assert value + "!" == SECRET + "!"


class TestLogs:
    def test_children_made_later(self, caplog: pytest.LogCaptureFixture) -> None:
        """Records of a library's logger made after the storage opened (botocore makes
        them on its first request) are scrubbed: message, arguments and exception."""
        redaction.install_log_filter()
        remember([SECRET])
        caplog.set_level(logging.DEBUG)
        log = logging.getLogger("botocore.made.later")
        log.debug("headers %r", {"X-Amz-Security-Token": SECRET.encode()})
        try:
            raise ValueError(f"refused {quote(SECRET)}")
        except ValueError:
            log.exception("failed with %s", quote_plus(SECRET))
        text = caplog.text
        assert "X-Amz-Security-Token" in text
        assert "refused ***" in text
        assert "c0rpus" not in text

    def test_other_loggers_untouched(self, caplog: pytest.LogCaptureFixture) -> None:
        """An application's own records are not rewritten (only the listed loggers)."""
        redaction.install_log_filter()
        remember([SECRET])
        caplog.set_level(logging.DEBUG)
        logging.getLogger("myapp").info("%s", "hello")
        assert caplog.records[0].args == ("hello",)

    def test_filter_for_handlers(self) -> None:
        """SecretFilter scrubs a record in place and lets it through."""
        remember([SECRET])
        record = logging.LogRecord("app", logging.INFO, __file__, 1, "%s", (SECRET,), None)
        assert SecretFilter().filter(record)
        assert record.getMessage() == "***"


def _fails(dsn: str) -> None:
    secret_copy = dsn.upper()  # a local holding the secret, as library frames do
    raise OSError(5, f"cannot reach {quote(dsn, safe='')}", secret_copy[:3])


@guarded
def _boundary(dsn: str) -> None:
    _fails(dsn)


class TestExceptions:
    def test_guarded_leaves_no_locals(self) -> None:
        """An exception out of a guarded function: its messages scrubbed, and no frame
        it passed through keeps its locals (the DSN argument included)."""
        remember([SECRET])
        with pytest.raises(OSError, match="cannot reach") as info:
            _boundary(SECRET)
        text = "".join(
            traceback.TracebackException.from_exception(info.value, capture_locals=True).format()
        )
        assert "_fails" in text  # the frames are still shown
        assert "_boundary" in text
        assert "c0rpus" not in text.lower()
        assert "***" in str(info.value)

    def test_causes_are_scrubbed(self) -> None:
        """The chain is scrubbed too: a library error kept as the cause."""
        remember([SECRET])
        try:
            try:
                raise RuntimeError(f"token={quote_plus(SECRET)}")
            except RuntimeError as inner:
                raise OSError(5, "failed") from inner
        except OSError as exc:
            redaction.scrub_exception(exc)
            text = "".join(traceback.format_exception(exc))
        assert "c0rpus" not in text
        assert "token=***" in text

    def test_sdk_message_attribute(self) -> None:
        """An SDK error's ``message`` attribute (Azure's, gcsfs's) is scrubbed too."""
        remember([SECRET])
        error = RuntimeError(SECRET)
        error.message = f"url?sig={quote(SECRET, safe='')}"  # type: ignore[attr-defined]
        redaction.scrub_exception(error)
        assert str(error) == "***"
        assert error.message == "url?sig=***"  # type: ignore[attr-defined]
