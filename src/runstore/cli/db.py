"""``runstore db``: runstore's schema, through Alembic and the migrations in the package,
and the upkeep of what it holds (``keep-summaries``).

Every schema command builds its Alembic config with :func:`runstore.migrations.alembic_config`
(the migrations that ship with this runstore, no ``alembic.ini``), giving the URL and the
schema to ``env.py`` as ``-x url=... -x schema=...`` would; env.py makes its own engine
and migrates in one transaction under runstore's migration lock, so several deploys may
upgrade the same database at once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from alembic import command
from alembic.util import CommandError

from runstore.cli.common import DatabaseAddress
from runstore.cli.common import database_options
from runstore.cli.output import one_line
from runstore.migrations import alembic_config
from runstore.migrations import current_revision
from runstore.migrations import head_revision
from runstore.sql import SqlRunsStorage
from runstore.sql.errors import translated_errors

__all__ = ["db"]

NOT_AT_HEAD = 3
"""``db current --check-head``'s exit status for a database not at head (errors exit 1,
usage errors 2)."""


@click.group()
def db() -> None:
    """Create, upgrade, downgrade and check runstore's schema in a database, and keep the
    summaries of finished runs."""


@contextmanager
def _alembic() -> Iterator[None]:
    """Database errors as runstore's; a migration's refusal to lose rows (a
    ``RuntimeError`` of the migration's own) as Alembic's refusals are."""
    try:
        with translated_errors():
            yield
    except RuntimeError as exc:
        if type(exc) is not RuntimeError:
            raise
        raise CommandError(str(exc)) from exc


def _revision(database: DatabaseAddress) -> str | None:
    if database.missing_file:
        return None  # without creating the file
    with database.engine() as engine, engine.connect() as connection:
        return current_revision(connection)


def _describe(revision: str | None) -> str:
    if revision is None:
        return "no runstore schema"
    return f"revision {revision}" + (" (head)" if revision == head_revision() else "")


@db.command()
@click.argument("revision", default="head")
@database_options()
def upgrade(database: DatabaseAddress, revision: str) -> None:
    """Upgrade the schema to REVISION (default: head, this runstore's newest).

    Creates the tables in an empty database. Every row is kept. Safe to run from several
    processes at once: they take turns, and the later ones find nothing to do.
    """
    if revision == "head":  # as init() does it: refusing schemas it cannot place
        storage = SqlRunsStorage(database.url, schema=database.schema)
        try:
            storage.init()
        finally:
            storage.close()
    else:
        with _alembic():
            command.upgrade(database.alembic_config(), revision)
    click.echo(f"{database.shown}: {_describe(_revision(database))}")


@db.command()
@click.argument("revision")
@database_options()
def downgrade(database: DatabaseAddress, revision: str) -> None:
    """Downgrade the schema to REVISION (``base`` removes runstore's tables).

    A migration that would lose rows (scores, repetitions) refuses while there is
    anything to lose, and nothing is changed.
    """
    database.require_file()
    with _alembic():
        command.downgrade(database.alembic_config(), revision)
    click.echo(f"{database.shown}: {_describe(_revision(database))}")


@db.command()
@click.argument("revision")
@database_options()
def stamp(database: DatabaseAddress, revision: str) -> None:
    """Record that the schema is at REVISION, without migrating anything.

    For tables made outside runstore's migrations, or whose version table was lost:
    stamp the revision of the runstore that made them, then `db upgrade`.
    """
    database.require_file()
    with _alembic():
        command.stamp(database.alembic_config(), revision)
    click.echo(f"{database.shown}: {_describe(_revision(database))}")


@db.command()
@click.option(
    "--check-head",
    is_flag=True,
    help=(
        f"Exit with status {NOT_AT_HEAD} unless the database is at this runstore's head "
        "revision (errors, such as an unreachable database, exit with 1)."
    ),
)
@database_options()
def current(database: DatabaseAddress, check_head: bool) -> None:
    """Print the revision the database's schema is at (nothing if it has none).

    With --check-head the exit status says whether it is at this runstore's head (0) or
    not (3: no schema, behind, or from a newer runstore); errors -- an unreachable
    database, a refused login -- exit with 1, so a deploy script can tell them apart.
    """
    revision = _revision(database)
    if revision is not None:
        click.echo(revision)
    if revision == head_revision():
        return
    if revision is None:
        state = f"{database.shown} has no runstore schema"
    else:
        state = f"{database.shown} is at revision {revision}"
    click.echo(
        f"{state}; this runstore's head is {head_revision()} "
        f"(`runstore db upgrade` brings it there)",
        err=True,
    )
    if check_head:
        click.get_current_context().exit(NOT_AT_HEAD)


@db.command()
@click.option("--verbose", "-v", is_flag=True, help="Show each revision in full.")
@database_options(required=False)
def history(database: DatabaseAddress | None, verbose: bool) -> None:
    """List runstore's migrations, newest first.

    With a database (--url), its current revision is marked.
    """
    if database is None or database.missing_file:
        config = alembic_config()
        config.stdout = sys.stdout
        command.history(config, verbose=verbose)
        return
    with _alembic():
        command.history(database.alembic_config(), verbose=verbose, indicate_current=True)


@db.command()
@database_options()
def check(database: DatabaseAddress) -> None:
    """Compare the database's tables with this runstore's models (Alembic's check).

    Exits with status 1 when the database is not at head or its tables differ from what
    the migrations make (a change made by hand).
    """
    database.require_file()
    with _alembic():
        command.check(database.alembic_config())


@db.command("keep-summaries")
@click.option(
    "--dataset", "dataset_id", metavar="ID", help="Only the finished runs of this dataset."
)
@database_options()
def keep_summaries(database: DatabaseAddress, dataset_id: str | None) -> None:
    """Keep the summary of every finished run (completed or failed) that has none kept.

    For runs finished before summaries were kept (a database older than runstore 0.4), or
    whose kept summary a later write made stale: `runs show`, `runs trend` and the viewer
    then read them instead of computing them. Each run is kept on its own, so the command
    may be stopped and run again; a run written to meanwhile is left for the next time.
    """
    with database.storage() as storage:
        kept = storage.keep_summaries(dataset_id=dataset_id)
    which = "" if dataset_id is None else f" of dataset {one_line(dataset_id)}"
    click.echo(f"Kept {kept} {'summary' if kept == 1 else 'summaries'} of finished runs{which}.")
