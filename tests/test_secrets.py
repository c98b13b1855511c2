"""No secret in any output: the corpus of every secret-bearing DSN form of every scheme x
every output (reprs, exception messages and tracebacks with their locals, the command
line's stdout and stderr with usage errors, logs at DEBUG), each secret looked for as
written, percent-encoded, ``quote_plus``-encoded and in base64; and a whole S3 workflow.

Operations fail fast: the servers are a closed loopback port (refused at once) or, for
Azure (whose SDK retries a refused connection for a minute and a half), a loopback server
that answers 403 to everything.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import pytest

from storage_dsn import (
    InvalidKeyError,
    NoPublicURLError,
    Storage,
    open_storage,
    parse_dsn,
    redaction,
)
from storage_dsn.cli import main
from storage_dsn.storage import clear_cache
from tests.conftest import SECRET
from tests.servers import free_port
from tests.servers.refusing import refusing_server

__all__ = ["refusing_server"]

PLUGINS = Path(__file__).parent / "plugins"


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


# -- the corpus ---------------------------------------------------------------------------

# Each secret has characters that every encoding changes ('/', '+', '=', '%', a space).
S3_SECRET = "c0rpus/S3+Secret=Key%9"
S3_TOKEN = "FwoGZXIvYXdz/Session+Token=Corpus%1"
AZ_KEY = base64.b64encode(
    b"corpus azure account key, 64 bytes long, as Azure's are.  \xfb\xff"
).decode()
AZ_SIG = "c0rpus/SAS+Signature="
SFTP_PASSWORD = "c0rpus/SFTP Pass+word=%2"
SSH_PASSPHRASE = "c0rpus/Key Pass+phrase=%3"
FTP_PASSWORD = "c0rpus/FTP+Pass=word%4"
GCS_KEY_ID = "c0rpus0123456789abcdef0123456789abcdef01"


@dataclass(frozen=True)
class Where:
    """The servers and files a corpus DSN points at."""

    refused: str  # host:port of a closed port
    refusing: str  # host:port of the 403 server
    gcs_key: dict[str, str]  # a service-account key (a real RSA key, unusable)
    gcs_key_file: Path
    ssh_key_file: Path  # an ed25519 key encrypted with SSH_PASSPHRASE


def _q(value: str) -> str:
    return quote(value, safe="")


def _sas(sig: str) -> str:
    return f"sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig={_q(sig)}"


#: name -> (DSN builder, the secrets it holds)
CORPUS: dict[str, tuple[Callable[[Where], str], tuple[str, ...]]] = {
    "s3-key-secret": (
        lambda w: f"s3+http://AKIACORPUS:{_q(S3_SECRET)}@{w.refused}/bucket/p/?retries=0",
        (S3_SECRET,),
    ),
    "s3-session-token": (
        lambda w: (
            f"s3+http://AKIACORPUS:{_q(S3_SECRET)}@{w.refused}/bucket/p/"
            f"?token={_q(S3_TOKEN)}&retries=0"
        ),
        (S3_SECRET, S3_TOKEN),
    ),
    "s3-obstore-token": (
        lambda w: (
            f"s3+http://AKIACORPUS:{_q(S3_SECRET)}@{w.refused}/bucket/p/"
            f"?token={_q(S3_TOKEN)}&retries=0&engine=obstore"
        ),
        (S3_SECRET, S3_TOKEN),
    ),
    "s3-https-endpoint": (
        lambda w: (
            f"s3://AKIACORPUS:{_q(S3_SECRET)}@bucket.s3.eu-central-1.amazonaws.com/p/"
            f"?endpoint_url={_q('http://' + w.refused)}&token={_q(S3_TOKEN)}&retries=0"
        ),
        (S3_SECRET, S3_TOKEN),
    ),
    "az-account-key": (
        lambda w: f"az+http://corpusacct:{_q(AZ_KEY)}@{w.refusing}/cont/p/",
        (AZ_KEY,),
    ),
    "az-sas-base64": (
        lambda w: (
            f"az+http://corpusacct:{_q(base64.b64encode(_sas(AZ_SIG).encode()).decode())}"
            f"@{w.refusing}/cont/p/"
        ),
        (AZ_SIG, base64.b64encode(_sas(AZ_SIG).encode()).decode()),
    ),
    "az-sas-raw": (
        lambda w: f"az+http://corpusacct:{_q('?' + _sas(AZ_SIG))}@{w.refusing}/cont/p/",
        (AZ_SIG,),
    ),
    "az-connection-string": (
        lambda w: (
            "az://corpusacct@blob.core.windows.net/cont/p/?option.connection_string="
            + _q(
                "DefaultEndpointsProtocol=http;AccountName=corpusacct;"
                f"AccountKey={AZ_KEY};BlobEndpoint=http://{w.refusing}/corpusacct;"
            )
        ),
        (AZ_KEY,),
    ),
    "gs-token-json": (
        lambda w: f"gs+http://{w.refusing}/bucket/p/?option.token={_q(json.dumps(w.gcs_key))}",
        ("private_key", GCS_KEY_ID),  # "private_key": looked up in the key itself
    ),
    "gs-token-path": (
        lambda w: f"gs+http://{w.refusing}/bucket/p/?option.token={_q(str(w.gcs_key_file))}",
        ("private_key", GCS_KEY_ID),
    ),
    "sftp-password": (
        lambda w: f"sftp://corpus:{_q(SFTP_PASSWORD)}@{w.refused}/srv/p/?known_hosts=none",
        (SFTP_PASSWORD,),
    ),
    "sftp-key-passphrase": (
        lambda w: (
            f"sftp://corpus@{w.refused}/srv/p/?known_hosts=none"
            f"&key_file={_q(str(w.ssh_key_file))}&option.passphrase={_q(SSH_PASSPHRASE)}"
        ),
        (SSH_PASSPHRASE,),
    ),
    "ftp-plugin": (
        lambda w: f"ftp://corpus:{_q(FTP_PASSWORD)}@{w.refused}/p/",
        (FTP_PASSWORD,),
    ),
}
CASES = sorted(CORPUS)


@pytest.fixture(scope="module")
def where(refusing_server: str, tmp_path_factory: pytest.TempPathFactory) -> Where:
    import asyncssh
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    directory = tmp_path_factory.mktemp("corpus")
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    refused = f"127.0.0.1:{free_port()}"
    gcs_key = {
        "type": "service_account",
        "project_id": "corpus",
        "private_key_id": GCS_KEY_ID,
        "private_key": pem,
        "client_email": "corpus@corpus.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"http://{refused}/token",
    }
    key_file = directory / "key.json"
    key_file.write_text(json.dumps(gcs_key))
    ssh_key_file = directory / "id_ed25519"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(
        str(ssh_key_file), format_name="pkcs8-pem", passphrase=SSH_PASSPHRASE
    )
    return Where(refused, refusing_server, gcs_key, key_file, ssh_key_file)


@dataclass(frozen=True)
class Case:
    name: str
    dsn: str
    #: Every form of each of its secrets, to look for.
    forms: list[str]


@pytest.fixture
def case(request: pytest.FixtureRequest, where: Where, monkeypatch: pytest.MonkeyPatch) -> Case:
    """A corpus DSN, and the forms of its secrets."""
    build, secrets = CORPUS[request.param]
    if request.param == "ftp-plugin":
        monkeypatch.syspath_prepend(str(PLUGINS))
    values = [where.gcs_key[s] if s == "private_key" else s for s in secrets]
    forms = sorted({f for v in values for f in _forms(v)}, key=len, reverse=True)
    return Case(request.param, build(where), forms)


def _forms(secret: str) -> list[str]:
    """A secret as written, percent-encoded, quote_plus-encoded and in base64; a PEM key
    by each of its lines."""
    lines = secret.strip().splitlines()
    if len(lines) > 1:
        return [f for line in lines if len(line) >= 16 for f in _forms(line)]
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


def _found(forms: list[str], texts: dict[str, str]) -> list[str]:
    """``where: form`` for each form of a secret found in an output (none, we hope)."""
    return [f"{where}: {form!r}" for where, text in texts.items() for form in forms if form in text]


def _describe(exc: BaseException) -> str:
    """An exception as every tool shows it: message, repr, the traceback of its chain
    with every frame's local variables."""
    te = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return f"{exc}\n{exc!r}\n{''.join(te.format())}"


OPERATIONS: dict[str, Callable[[Storage], Any]] = {
    "write_bytes": lambda s: s.write_bytes("a.txt", b"x"),
    "read_bytes": lambda s: s.read_bytes("a.txt"),
    "open": lambda s: s.open("a.txt").read(),
    "list": lambda s: list(s.list()),
    "stat": lambda s: s.stat("a.txt"),
    "delete": lambda s: s.delete("a.txt"),
    "read_many": lambda s: s.read_many(["a.txt", "b.txt"]),
    "write_many": lambda s: s.write_many({"a.txt": b"x", "b.txt": b"y"}),
    "url-expires": lambda s: s.url("a.txt", expires=10**9),
    "bad-key": lambda s: s.read_bytes("../a.txt"),
}


def _failure(storage: Storage, operation: Callable[[Storage], Any]) -> str | None:
    """What ``operation`` on ``storage`` raised, described. (No DSN in this frame: the
    traceback starts here, its locals shown.)"""
    try:
        operation(storage)
    except Exception as exc:
        return _describe(exc)
    return None


@dataclass
class Run:
    """What the corpus printed: each case's exceptions, and every log record."""

    errors: dict[str, dict[str, str]]
    logs: dict[str, str]


@pytest.fixture(scope="module")
def corpus_run(where: Where) -> Iterator[Run]:
    """Every case's operations, once, concurrently (each waits on its own refusal), with
    every logger at DEBUG; each case knows only its own secrets."""
    redaction._reset()
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    names = ["", *redaction.LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(PLUGINS))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        patch.setenv("NO_GCE_CHECK", "true")
        patch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
        logging.getLogger().addHandler(handler)
        for name in names:
            logging.getLogger(name).setLevel(logging.DEBUG)
        try:
            storages = {c: open_storage(CORPUS[c][0](where)) for c in CASES}
            # Every operation of every case at once: each mostly waits (on a refusal, on
            # a client's backoff before its one retry).
            with ThreadPoolExecutor(32) as pool:
                futures = {
                    (c, name): pool.submit(_failure, storages[c], operation)
                    for c in CASES
                    for name, operation in OPERATIONS.items()
                }
                errors: dict[str, dict[str, str]] = {c: {} for c in CASES}
                for (c, name), future in futures.items():
                    text = future.result()
                    if text is not None:
                        errors[c][name] = text
            del storages
        finally:
            logging.getLogger().removeHandler(handler)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logs = {f"log {i} {r.name}": formatter.format(r) for i, r in enumerate(records)}
    yield Run(errors, logs)
    clear_cache()
    redaction._reset()


@pytest.mark.parametrize("case", CASES, indirect=True)
class TestCorpus:
    """Every secret-bearing DSN form x every output."""

    def test_reprs(self, case: Case) -> None:
        """repr, str and redacted() of the config and the storage."""
        dsn, forms = case.dsn, case.forms
        config = parse_dsn(dsn)
        storage = open_storage(dsn)
        texts = {
            "repr(config)": repr(config),
            "str(config)": str(config),
            "config.redacted()": config.redacted(),
            "repr(storage)": repr(storage),
            "str(storage)": str(storage),
            "repr(storage.config)": repr(storage.config),
        }
        assert not _found(forms, texts)

    def test_errors(self, case: Case, corpus_run: Run) -> None:
        """Every failing operation's exception: message, repr, traceback with locals."""
        texts = corpus_run.errors[case.name]
        assert len(texts) >= 5, sorted(texts)  # the backend is down: they fail
        assert not _found(case.forms, texts)

    def test_logs(self, case: Case, corpus_run: Run) -> None:
        """Every log record at DEBUG, of every logger, as a handler prints it."""
        assert corpus_run.logs  # botocore, asyncssh, azure... do log
        assert not _found(case.forms, corpus_run.logs)

    def test_cli(self, case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """storage-dsn's stdout and stderr, for each command on the failing storage."""
        dsn, forms = case.dsn, case.forms
        commands = [
            ["check", dsn],
            ["check", "--connect", dsn],
            ["ls", "-l", dsn, "sub/"],
            ["url", dsn, "a.txt", "--expires", "999999999"],
            ["sync", dsn, str(tmp_path / "copy")],
        ]
        texts = {}
        for argv in commands:
            code = main(argv)
            out, err = capsys.readouterr()
            texts[argv[0] + " " + argv[1][:7]] = f"{code}\n{out}\n{err}"
        assert not _found(forms, texts)

    def test_usage_errors(self, case: Case, capsys: pytest.CaptureFixture[str]) -> None:
        """argparse's usage errors, with the DSN as written and with its secrets pasted
        unencoded (not a valid DSN, still a secret)."""
        dsn, forms = case.dsn, case.forms
        texts = {}
        for form, arg in (("dsn", dsn), ("unencoded", unquote(dsn))):
            for number, argv in enumerate(
                (
                    [arg, "ls"],
                    ["ls", arg, "prefix", "one-too-many"],
                    ["sync", "./a", "./b", "--jobs", arg],
                    ["url", arg],
                    ["check", "--bogus", arg],
                )
            ):
                with pytest.raises(SystemExit) as exit_info:
                    main(argv)
                out, err = capsys.readouterr()
                texts[f"{form} #{number}"] = f"{out}\n{err}"
                assert exit_info.value.code == 2
        assert not _found(forms, texts)


# -- single leaks, each in the form it was found in ---------------------------------------

GCS_TOKEN = "ya29.c0rpus/Access+Token=%5"


def test_gcs_errors_mask_every_form_of_the_token() -> None:
    """gcsfs's messages can carry the token (a URL's ``access_token=``, quote_plus-encoded):
    the backend's translation masks it in every form."""
    from storage_dsn.schemes.gcs.backend import GCSBackend

    config = parse_dsn(f"gs+http://127.0.0.1:9/bucket/?option.token={quote(GCS_TOKEN, safe='')}")

    def fail() -> None:
        raise RuntimeError(
            f"GET https://oauth2.example/tokeninfo?access_token={quote_plus(GCS_TOKEN)} "
            f"({quote(GCS_TOKEN)}, {GCS_TOKEN})"
        )

    with pytest.raises(OSError, match="tokeninfo") as info:
        GCSBackend(config).guarded("a.txt", fail)
    text = _describe(info.value)  # first: pytest keeps an assert's operands in locals
    assert not _found(_forms(GCS_TOKEN), {"error": text})


def test_cli_masks_a_gcs_key_in_every_form(where: Where) -> None:
    """The command line masks a service-account key's private key wherever a library's
    message puts it: escaped in JSON, percent-encoded, quote_plus-encoded."""
    from storage_dsn.cli.output import Output
    from storage_dsn.dsn import secret_values

    config = parse_dsn(
        f"gs+http://127.0.0.1:9/bucket/?option.token={quote(json.dumps(where.gcs_key))}"
    )
    out, err = io.StringIO(), io.StringIO()
    output = Output(out, err)
    output.hide(secret_values(config))
    pem = where.gcs_key["private_key"]
    for shown in (pem, json.dumps(pem), quote(pem), quote_plus(pem), quote(json.dumps(pem))):
        output.error(f"failed: {shown}")
    assert not _found(_forms(pem) + _forms(GCS_KEY_ID), {"stderr": err.getvalue()})
