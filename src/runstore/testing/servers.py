"""Throwaway Postgres infrastructure for tests and benchmarks: a primary with a streaming
hot-standby replica, and a PgBouncer in transaction mode in front of the primary.

Everything lives in a temporary directory, on free local ports, and goes when the context
ends::

    with postgres_cluster() as cluster, pgbouncer(cluster.primary_url) as pooler:
        storage = SqlRunsStorage(pooler.url, read_replicas=[cluster.replica_url])

It needs PostgreSQL's server programs (``initdb``, ``pg_ctl``, ``pg_basebackup``: found on
``PATH``, in ``RUNSTORE_TEST_PG_BIN`` or under ``/usr/lib/postgresql/*/bin``) and
``pgbouncer`` for the pooler; :func:`missing_programs` says which are missing. Run as
root, the servers run as the ``postgres`` user (neither runs as root).

The pooler's configuration is PgBouncer's stock one -- transaction pooling, no ignored
startup parameters, no prepared-statement support -- with only what a test needs: where
to listen, the database, and trust authentication.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

__all__ = [
    "Cluster",
    "Pooler",
    "missing_programs",
    "pgbouncer",
    "postgres_cluster",
    "stop_process",
]

DATABASE = "runstore"
"""The database the cluster creates, and the pooler serves."""

_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "120",
    "shared_buffers": "'64MB'",
    "fsync": "off",
    "full_page_writes": "off",
    "wal_level": "replica",
    "max_wal_senders": "4",
    "wal_keep_size": "'256MB'",
    "hot_standby": "on",
    "logging_collector": "off",
    # No commits but the tests': an autovacuum's commit arriving at a replica told to
    # delay its replay would make it lag behind again, whatever a test waited for.
    "autovacuum": "off",
}


def _program(name: str) -> str | None:
    where = os.environ.get("RUNSTORE_TEST_PG_BIN")
    if where and Path(where, name).exists():
        return str(Path(where, name))
    found = shutil.which(name)
    if found is not None:
        return found
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(directory, name).exists():
            return str(Path(directory, name))
    return shutil.which(name, path="/usr/sbin:/sbin")


def missing_programs(*, pooler: bool = True) -> list[str]:
    """The programs these servers need that are not installed."""
    names = ["initdb", "pg_ctl", "pg_basebackup", *(["pgbouncer"] if pooler else [])]
    return [name for name in names if _program(name) is None]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user(command: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


def _run(*command: str) -> None:
    done = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def _url(port: int, database: str = DATABASE) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"


@dataclass
class Server:
    """One Postgres server of the cluster."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return _url(self.port)

    def start(self) -> None:
        _run(_need("pg_ctl"), "-D", str(self.directory), "-l", f"{self.directory}.log",
             "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        _run(_need("pg_ctl"), "-D", str(self.directory), "-m", "fast", "-w", "stop")

    def configure(self, **settings: str) -> None:
        """Change settings that a reload applies (``recovery_min_apply_delay``, say)."""
        with Path(self.directory, "postgresql.auto.conf").open("a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")
        _run(_need("pg_ctl"), "-D", str(self.directory), "reload")


@dataclass
class Cluster:
    """A primary and its streaming replica."""

    primary: Server
    replica: Server

    @property
    def primary_url(self) -> str:
        return self.primary.url

    @property
    def replica_url(self) -> str:
        return self.replica.url

    def wait_for_replica(self, timeout: float = 30.0) -> None:
        """Until the replica has replayed everything the primary committed so far."""
        primary = sa.create_engine(self.primary_url, poolclass=sa.NullPool)
        replica = sa.create_engine(self.replica_url, poolclass=sa.NullPool)
        try:
            with primary.connect() as connection:
                target = connection.scalar(sa.text("SELECT pg_current_wal_lsn()"))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with replica.connect() as connection:
                    behind = connection.scalar(
                        sa.text("SELECT pg_wal_lsn_diff(:target, pg_last_wal_replay_lsn())"),
                        {"target": target},
                    )
                if behind is not None and behind <= 0:
                    return
                time.sleep(0.02)
            raise TimeoutError(f"the replica did not replay up to {target} in {timeout} s")
        finally:
            primary.dispose()
            replica.dispose()


def _need(name: str) -> str:
    found = _program(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed")
    return found


@contextlib.contextmanager
def _server_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="runstore-servers-") as directory:
        path = Path(directory)
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
        yield path


@contextlib.contextmanager
def postgres_cluster(*, replica: bool = True) -> Iterator[Cluster]:
    """A new primary (with a database :data:`DATABASE`) and, unless told not to, a hot
    standby streaming from it."""
    with _server_directory() as directory:
        primary = Server(directory / "primary", _free_port())
        _run(_need("initdb"), "-D", str(primary.directory), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        settings = {**_SERVER_SETTINGS, "port": str(primary.port)}
        settings["unix_socket_directories"] = f"'{directory}'"
        with Path(primary.directory, "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        started: list[Server] = []
        try:
            primary.start()
            started.append(primary)
            admin = sa.create_engine(
                _url(primary.port, "postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
            )
            with admin.connect() as connection:
                connection.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
            admin.dispose()
            standby = Server(directory / "replica", _free_port())
            if replica:
                _run(_need("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                     "-U", "postgres", "-D", str(standby.directory), "-R", "-X", "stream",
                     "--checkpoint=fast", "--no-sync")  # fmt: skip
                with Path(standby.directory, "postgresql.auto.conf").open("a") as conf:
                    conf.write(f"port = {standby.port}\n")
                standby.start()
                started.append(standby)
            yield Cluster(primary, standby)
        finally:
            for server in reversed(started):
                with contextlib.suppress(RuntimeError):
                    server.stop()


@dataclass
class Pooler:
    """A running PgBouncer."""

    port: int
    directory: Path

    @property
    def url(self) -> str:
        return _url(self.port)

    def log(self) -> str:
        return Path(self.directory, "pgbouncer.log").read_text(errors="replace")


@contextlib.contextmanager
def pgbouncer(server_url: str) -> Iterator[Pooler]:
    """PgBouncer in transaction mode in front of the server at ``server_url`` (its
    database :data:`DATABASE`), with the stock settings."""
    server = sa.make_url(server_url)
    with _server_directory() as directory:
        pooler = Pooler(_free_port(), directory)
        Path(directory, "users.txt").write_text('"postgres" ""\n')
        Path(directory, "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{DATABASE} = host={server.host} port={server.port} dbname={server.database}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {pooler.port}\n"
            "unix_socket_dir =\n"
            "pool_mode = transaction\n"
            "auth_type = trust\n"
            f"auth_file = {directory}/users.txt\n"
            f"logfile = {directory}/pgbouncer.log\n"
        )
        for name in ("users.txt", "pgbouncer.ini"):
            if os.geteuid() == 0:
                shutil.chown(Path(directory, name), "postgres", "postgres")
        with Path(directory, "pgbouncer.out").open("wb") as output:  # never a pipe: full, it
            process = subprocess.Popen(  # would stop the pooler
                _as_server_user([_need("pgbouncer"), str(directory / "pgbouncer.ini")]),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_port(pooler.port, process, directory / "pgbouncer.out")
            yield pooler
        finally:
            stop_process(process)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a server a test started: asked to (SIGTERM), then made to, after ``timeout``
    seconds (SIGKILL)."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes], output: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = output.read_text(errors="replace")
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {error}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"pgbouncer did not listen on port {port} in {timeout} s")
