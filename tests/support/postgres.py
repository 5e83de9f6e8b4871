"""A real PostgreSQL 15 for tests (Debian's postgresql): initdb in a temp folder, the server on a free loopback
port, trust authentication on loopback only, stopped afterwards. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` system user (Debian's package creates it)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.services import free_port, start, stop, wait_for_port

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
USER = "holocrm"


def pg_bin() -> Path | None:
    for folder in (os.environ.get("HOLOCRM_PG_BIN", ""), *PG_BIN_CANDIDATES):
        if folder and (Path(folder) / "initdb").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def postgres_available() -> str:
    if pg_bin() is None:
        return "PostgreSQL (initdb) is not installed (apt-get install postgresql-15): skipped"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run PostgreSQL as: skipped"
    if importlib_missing("psycopg2"):
        return "psycopg2 is not installed (dagster-postgres brings psycopg2-binary): skipped"
    return ""


def importlib_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def _demote():
    """preexec for the server processes when the tests run as root."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam("postgres")

    def demote():
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return demote


def run_postgres(folder: Path):
    """Yields a function ``database(name) -> URL`` (creates the database) of a fresh server; stops it."""
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    binaries = pg_bin()
    demote = _demote()
    if demote is not None:
        # pytest's temp folders are private to root: the server's user could not reach them
        folder = Path(tempfile.mkdtemp(prefix="holocrm-pg-"))
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    data = folder / "pgdata"
    subprocess.run(
        [binaries / "initdb", "-D", data, "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        preexec_fn=demote,
    )
    port = free_port()
    log = folder / "postgres.log"
    if demote is not None:
        log.touch()
        os.chown(log, pwd.getpwnam("postgres").pw_uid, -1)
    command = [
        str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
        "-k", str(folder), "-c", "fsync=off", "-c", "max_connections=200",
    ]  # fmt: skip
    process = start(command, log, preexec=demote)
    try:
        wait_for_port(port, process, log)

        def database(name: str) -> str:
            import psycopg2

            connection = psycopg2.connect(host="127.0.0.1", port=port, user=USER, dbname="postgres")
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
            connection.close()
            return f"postgresql+psycopg2://{USER}@127.0.0.1:{port}/{name}"

        yield database
    finally:
        stop(process)
        if demote is not None:
            shutil.rmtree(folder, ignore_errors=True)
