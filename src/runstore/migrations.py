"""Alembic glue: where the migrations are, how they are configured, run and checked.

runstore keeps its own version table (:data:`VERSION_TABLE`), so its history can share a
database with an application's own Alembic history, and its autogenerate considers only
runstore's tables.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateSchema

from runstore.engine import begin_statement
from runstore.errors import SchemaOutOfDateError
from runstore.plans import Mode
from runstore.schema import TABLE_SCHEMAS

__all__ = [
    "VERSION_TABLE",
    "alembic_config",
    "check_schema",
    "check_tables",
    "connection_schema",
    "current_revision",
    "exclude_runstore",
    "head_revision",
    "include_name",
    "include_object_on",
    "lock_for_migration",
    "migrating",
    "migration_transaction",
    "migrations_directory",
    "require_head",
    "upgrade_to_head",
]

VERSION_TABLE = "runstore_alembic_version"

# Any constant will do; it only has to be the same for every process migrating runstore.
_POSTGRES_MIGRATION_LOCK = 0x72756E73746F7265  # "runstore"

_UPGRADE_HINT = (
    "call init() on the storage (it upgrades in place, keeping every row), or run "
    "`runstore db upgrade --url ...` (add `--schema ...` for a Postgres schema of its own)"
)


def migrations_directory() -> Path:
    """The Alembic environment: packaged in the wheel, or at the top of a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_migrations", package.parent.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(f"runstore's migrations are missing from {package}")


def alembic_config(
    connection: Connection | None = None, url: str | None = None, *, schema: str | None = None
) -> Config:
    """An Alembic config for runstore's migrations, on ``connection`` or ``url``.

    ``url`` and ``schema`` (a Postgres schema for runstore's tables) reach ``env.py`` as
    the ``alembic`` command's ``-x url=... -x schema=...`` would, so they win over
    ``RUNSTORE_DATABASE_URL``; env.py then makes its own engine and takes the migration
    lock itself.
    """
    if schema is not None and url is None:
        raise ValueError("schema= goes with url=: a connection already searches its schema")
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        arguments = [f"url={url}"] + ([] if schema is None else [f"schema={schema}"])
        config.cmd_opts = argparse.Namespace(x=arguments)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this version of runstore knows."""
    head = _script_directory().get_current_head()
    assert head is not None, "runstore ships at least one migration"
    return head


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate filter: runstore's tables only (never an application's)."""
    return type_ != "table" or name in TABLE_SCHEMAS


def include_object_on(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Autogenerate filter for a database of ``dialect``: leaves out the indexes that
    runstore creates on another database only (``info={"only_on": dialect}`` beside their
    ``ddl_if``, such as Postgres' GIN index of run metadata), which autogenerate would
    otherwise expect everywhere."""

    def include_object(
        object: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ != "index" or reflected:
            return True
        only_on: str = object.info.get("only_on", dialect)
        return only_on == dialect

    return include_object


def exclude_runstore(name: str | None, type_: str, parent_names: Mapping[Any, str | None]) -> bool:
    """Autogenerate filter for an application's Alembic environment that shares a
    database with runstore: everything but runstore's own tables, their indexes and
    constraints, and its version table. Pass it as ``include_name`` in the
    application's ``env.py``::

        from runstore.migrations import exclude_runstore

        context.configure(..., include_name=exclude_runstore)

    Without it, ``alembic check`` there fails and ``alembic revision --autogenerate``
    writes operations that drop runstore's tables.
    """
    ours = {*TABLE_SCHEMAS, VERSION_TABLE}
    if type_ == "table":
        return name not in ours
    return parent_names.get("table_name") not in ours


def connection_schema(connection: Connection) -> str | None:
    """The Postgres schema of runstore's tables on ``connection``: the one its statements
    name (:func:`runstore.engine.schema_translation`), or None for the default one."""
    translation = connection.get_execution_options().get("schema_translate_map") or {}
    schema: str | None = translation.get(None)
    return schema


@contextmanager
def migration_transaction(engine: Engine, schema: str | None = None) -> Iterator[Connection]:
    """The one transaction migrations run in, locked against concurrent migrations.

    ``schema`` (Postgres): the schema of runstore's tables (the one the engine's statements
    name, see :mod:`runstore.engine`); it is created first if missing.

    On SQLite foreign keys are off meanwhile (``PRAGMA foreign_keys`` cannot change
    inside a transaction): migrating a table by copying it (Alembic's batch mode) drops the
    original, and with foreign keys on, dropping a table deletes its rows first -- and,
    through ``ON DELETE CASCADE``, the rows that refer to them. Before committing, every
    foreign key is checked instead.
    """
    with engine.connect() as connection, migrating(connection, schema):
        yield connection


@contextmanager
def migrating(connection: Connection, schema: str | None = None) -> Iterator[None]:
    """:func:`migration_transaction` on a connection already open (an autocommit one).

    The whole upgrade runs in this one transaction, which holds the migration lock until
    it ends. With a schema (given, or named by the connection's statements), the
    transaction's own ``search_path`` is that schema (``SET LOCAL``, undone when it ends:
    no session state), for the migrations' own SQL and Alembic's inspection.
    """
    schema = schema or connection_schema(connection)
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        enforced = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        connection.exec_driver_sql(str(begin_statement(connection.dialect.name, Mode.WRITE)))
        lock_for_migration(connection)
        if schema is not None:
            connection.execute(CreateSchema(schema, if_not_exists=True))
            quoted = connection.dialect.identifier_preparer.quote_schema(schema)
            connection.exec_driver_sql(f"SET LOCAL search_path TO {quoted}")
        yield
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
            if broken is not None:
                raise SchemaOutOfDateError(f"a migration broke a foreign key: {tuple(broken)}")
        connection.commit()
    finally:
        connection.rollback()
        if sqlite and enforced:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def lock_for_migration(connection: Connection) -> None:
    """Serialize migrations across processes, inside the current transaction.

    Postgres: a transaction-level advisory lock. SQLite: the write lock that the
    transaction took with ``BEGIN IMMEDIATE`` already does.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK}
        )


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None when runstore's schema is absent."""
    options = {
        "version_table": VERSION_TABLE,
        "version_table_schema": connection_schema(connection),
    }
    context = MigrationContext.configure(connection, opts=options)
    return context.get_current_revision()


def _is_known(revision: str) -> bool:
    try:
        return _script_directory().get_revision(revision) is not None
    except (ResolutionError, CommandError):
        return False


def _check_known(revision: str | None, where: str) -> None:
    if revision is not None and not _is_known(revision):
        raise SchemaOutOfDateError(
            f"{where} is at runstore schema revision {revision!r}, which this version of "
            f"runstore does not know (its newest is {head_revision()!r}): the database was "
            f"migrated by a newer runstore; upgrade the runstore package"
        )


def upgrade_to_head(connection: Connection, schema: str | None = None) -> None:
    """Bring runstore's schema to head in one locked transaction; safe to run concurrently.

    ``connection`` is an autocommit connection (the asyncio adapter passes the one it runs
    blocking code on); ``schema`` is the Postgres schema of runstore's tables (by default
    the one the connection's statements name), created if missing.

    Raises:
        SchemaOutOfDateError: the database is at a revision this runstore does not know,
            or holds runstore's tables without a record of their revision.
    """
    with migrating(connection, schema):
        revision = current_revision(connection)
        if revision == head_revision():
            return  # Alembic would load every migration's file to find nothing to do
        _check_known(revision, "the database")
        if revision is None:
            _check_unrecorded(connection)
        command.upgrade(alembic_config(connection), "head")


def _check_unrecorded(connection: Connection) -> None:
    names = sa.inspect(connection).get_table_names(schema=connection_schema(connection))
    present = sorted(set(TABLE_SCHEMAS) & set(names))
    if present:
        raise SchemaOutOfDateError(
            f"the database holds runstore's tables ({', '.join(present)}) but no record of "
            f"their schema revision (the table {VERSION_TABLE} is missing or empty), so "
            f"runstore cannot tell which migrations they need. If they were made by this "
            f"version of runstore, record that with `runstore db stamp head --url ...`; if by "
            f"an older one, stamp that version's revision instead, then call init() again"
        )


def check_schema(connection: Connection, where: str) -> None:
    """What a storage checks at first use: the schema is exactly at head, and has every
    column this version reads and writes (:class:`SchemaOutOfDateError` otherwise;
    ``where`` names the storage in the message) -- in the Postgres schema the connection's
    statements name, if any: tables elsewhere (an application's, another tenant's) are
    never taken for runstore's."""
    require_head(connection, where)
    check_tables(connection, where)


def require_head(connection: Connection, where: str) -> None:
    """Raise :class:`SchemaOutOfDateError` unless the schema is exactly at head."""
    revision = current_revision(connection)
    if revision == head_revision():
        return
    _check_known(revision, where)
    state = "has no runstore schema" if revision is None else f"is at revision {revision!r}"
    raise SchemaOutOfDateError(
        f"{where} {state}, but this runstore needs revision {head_revision()!r}: {_UPGRADE_HINT}"
    )


def check_tables(connection: Connection, where: str) -> None:
    """Raise :class:`SchemaOutOfDateError` unless runstore's tables have every column
    this version reads and writes (a schema at head that was altered by hand)."""
    inspector = sa.inspect(connection)
    schema = connection_schema(connection)
    tables = set(inspector.get_table_names(schema=schema))
    for table, columns in TABLE_SCHEMAS.items():
        if table not in tables:
            raise SchemaOutOfDateError(
                f"{where}: the table {table} is missing although the schema is recorded at "
                f"revision {head_revision()!r} (it was dropped outside runstore's migrations)"
            )
        present = {column["name"] for column in inspector.get_columns(table, schema=schema)}
        missing = [name for name in columns if name not in present]
        if missing:
            raise SchemaOutOfDateError(
                f"{where}: the table {table} lacks the columns {', '.join(missing)} that this "
                f"runstore needs (its schema was changed outside runstore's migrations); "
                f"restore them, or recreate the tables with runstore's migrations"
            )
