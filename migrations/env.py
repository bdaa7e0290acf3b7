"""runstore's Alembic environment.

Used two ways: by ``SqlRunsStorage.init()``, which passes an open, locked connection in
``config.attributes["connection"]``, and by the ``alembic`` command from a checkout, where
the URL comes from ``-x url=...``, then ``RUNSTORE_DATABASE_URL``, then ``alembic.ini``,
and a Postgres schema for runstore's tables from ``-x schema=...`` (as
``SqlRunsStorage(url, schema=...)``).
"""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from runstore.engine import create_storage_engine, normalize_url, schema_name
from runstore.migrations import (
    VERSION_TABLE,
    connection_schema,
    include_name,
    include_object_on,
    migration_transaction,
)
from runstore.tables import metadata

config = context.config
# A guest in the host's logging: configure it only from an ini that has a logging section,
# and only when nothing else has configured logging yet.
if (
    config.config_file_name is not None
    and "connection" not in config.attributes
    and config.file_config.has_section("formatters")
    and not logging.getLogger().handlers
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("RUNSTORE_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set RUNSTORE_DATABASE_URL")
    return normalize_url(url).render_as_string(hide_password=False)


def _schema() -> str | None:
    return context.get_x_argument(as_dictionary=True).get("schema") or None


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        version_table_schema=connection_schema(connection),
        include_name=include_name,
        include_object=include_object_on(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    url, schema = _url(), _schema()
    if schema is not None:
        schema_name(schema, normalize_url(url))
    context.configure(
        url=url,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        if schema is not None:
            context.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            context.execute(f"SET LOCAL search_path TO {schema}")
        context.run_migrations()


def run_migrations_online() -> None:
    given: Connection | None = config.attributes.get("connection")
    if given is not None:  # init(): the caller holds the transaction and the lock
        _configure(given)
        with context.begin_transaction():
            context.run_migrations()
        return

    schema = _schema()
    engine = create_storage_engine(_url(), schema=schema)
    try:
        with migration_transaction(engine, schema) as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
