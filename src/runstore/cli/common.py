"""What every ``runstore`` command shares: the database options, errors, time options,
and the options that name a run's tags and metadata.

A command that needs the database takes :func:`database_options` and gets one
:class:`DatabaseAddress` argument, ``database``; it opens what it needs from it
(:meth:`DatabaseAddress.storage`, :meth:`DatabaseAddress.engine`,
:meth:`DatabaseAddress.alembic_config`).
Failures are reported by :class:`RunstoreGroup` as one ``Error: ...`` line on stderr
(exit status 1, or what :func:`errors_exit_with` set). Malformed option values are usage
errors (exit status 2), found before anything is read or written.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from typing import TypeVar
from typing import cast
from urllib.parse import quote
from urllib.parse import quote_plus

import click
import sqlalchemy as sa
from alembic.config import Config
from alembic.util import CommandError
from pydantic import TypeAdapter
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from runstore.arguments import confidence_argument
from runstore.engine import create_storage_engine
from runstore.engine import is_memory_sqlite
from runstore.engine import normalize_url
from runstore.engine import redacted_url
from runstore.errors import DatabaseError
from runstore.errors import InvalidInputError
from runstore.errors import StorageError
from runstore.jsonvalues import JsonValue
from runstore.limits import MAX_TAG_LENGTH
from runstore.limits import MAX_TAGS
from runstore.migrations import alembic_config
from runstore.models import Tag
from runstore.pairs import pair_text
from runstore.pairs import read_pair
from runstore.sql import SqlRunsStorage
from runstore.sql.errors import translated_errors

__all__ = [
    "REPLICAS_ENVVAR",
    "SCHEMA_ENVVAR",
    "URL_ENVVAR",
    "DatabaseAddress",
    "RunstoreGroup",
    "confidence_option",
    "cutoff_option",
    "database_options",
    "errors_exit_with",
    "json_option",
    "meta_option",
    "meta_text",
    "parse_cutoff",
    "parse_meta",
    "tags_option",
]

URL_ENVVAR = "RUNSTORE_DATABASE_URL"
SCHEMA_ENVVAR = "RUNSTORE_SCHEMA"
REPLICAS_ENVVAR = "RUNSTORE_READ_REPLICAS"

_SECRETS_KEY = "runstore.secrets"
_SHOWN_KEY = "runstore.database"
_ERROR_STATUS_KEY = "runstore.error_status"

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class DatabaseAddress:
    """The database a command works on: its URL and, on Postgres, runstore's schema and
    the read replicas that serve a read command."""

    url: str
    schema: str | None = None
    read_replicas: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """The URL as messages show it: passwords and secrets masked."""
        return redacted_url(self.url)

    @property
    def missing_file(self) -> bool:
        """True for a SQLite file that does not exist (connecting would create it)."""
        parsed = normalize_url(self.url)
        if parsed.get_backend_name() != "sqlite" or is_memory_sqlite(parsed):
            return False
        return not Path(str(parsed.database)).exists()

    def require_file(self) -> None:
        """Refuse a SQLite file that does not exist, rather than create an empty one.

        Raises:
            InvalidInputError: the URL names a SQLite file that does not exist.
        """
        if self.missing_file:
            raise InvalidInputError(
                f"there is no database at {self.shown} (`runstore db upgrade` creates one)"
            )

    @contextmanager
    def storage(self) -> Iterator[SqlRunsStorage]:
        """A storage on the database, closed afterwards. It does not migrate: a schema
        behind this runstore's head is refused with a message that says what to run.

        Raises:
            InvalidInputError: the URL names a SQLite file that does not exist.
        """
        self.require_file()
        storage = SqlRunsStorage(
            self.url, schema=self.schema, read_replicas=list(self.read_replicas)
        )
        try:
            yield storage
        finally:
            storage.close()

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        """An engine with runstore's settings (autocommit connections), disposed afterwards."""
        engine = create_storage_engine(self.url, schema=self.schema)
        try:
            with translated_errors():
                yield engine
        finally:
            engine.dispose()

    def alembic_config(self) -> Config:
        """The Alembic config of runstore's packaged migrations for this database.

        Alembic prints to the ``sys.stdout`` of the moment (as the command runs), not the
        one of its import.
        """
        config = alembic_config(url=self.url, schema=self.schema)
        config.stdout = sys.stdout
        return config


def _remember(context: click.Context, database: DatabaseAddress) -> None:
    """Note the database for error messages: its URL as shown, and its password, so that
    no message can show it (see :meth:`RunstoreGroup.invoke`)."""
    meta = context.find_root().meta
    meta[_SHOWN_KEY] = database.shown
    for url in (database.url, *database.read_replicas):
        try:
            password = sa.make_url(url).password
        except (sa.exc.ArgumentError, ValueError, TypeError):
            continue
        if password:
            password = str(password)
            # as given, and as it may be written in the URL itself
            secrets = {password, quote(password, safe=""), quote_plus(password, safe="")}
            meta.setdefault(_SECRETS_KEY, set()).update(secrets)


def database_options(*, required: bool = True, reads: bool = False) -> Callable[[_F], _F]:
    """``--url`` and ``--schema`` (or their environment variables), given to the command
    as one ``database`` argument: a :class:`DatabaseAddress`, or None when ``required`` is false
    and no URL was given. A command that only ``reads`` takes ``--read-replica`` too."""

    def decorate(command: _F) -> _F:
        @functools.wraps(command)
        def with_database(
            url: str | None,
            schema: str | None,
            read_replica: tuple[str, ...] = (),
            **arguments: Any,
        ) -> Any:
            database = None
            if url:
                database = DatabaseAddress(url, schema or None, tuple(read_replica))
                _remember(click.get_current_context(), database)
            elif required or schema or read_replica:
                # click's own message names the environment variable only from 8.2 on
                raise click.UsageError(f"Missing option '--url' (or {URL_ENVVAR}).")
            return command(database=database, **arguments)

        options = [
            click.option(
                "--url",
                envvar=URL_ENVVAR,
                show_envvar=True,
                metavar="URL",
                help="The database URL: sqlite:///runs.db, postgresql+psycopg://user@host/db.",
            ),
            click.option(
                "--schema",
                envvar=SCHEMA_ENVVAR,
                show_envvar=True,
                metavar="NAME",
                help="Postgres only: the schema that holds runstore's tables.",
            ),
        ]
        if reads:
            options.append(
                click.option(
                    "--read-replica",
                    multiple=True,
                    envvar=REPLICAS_ENVVAR,
                    show_envvar=True,
                    metavar="URL",
                    help=(
                        "Postgres only: a read replica to read from while it is not too "
                        "far behind (repeatable; the variable takes URLs separated by "
                        "spaces)."
                    ),
                )
            )
        decorated: Any = with_database
        for option in reversed(options):  # shown in this order
            decorated = option(decorated)
        return cast("_F", decorated)  # the options click adds, the rest as given

    return decorate


def json_option(command: _F) -> _F:
    """``--json``: print JSON for machines instead of tables."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print JSON (stable keys, documented in the README) instead of a table.",
    )(command)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        message = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors()
        )
    else:
        message = str(exc)
    return " ".join(message.split()) or type(exc).__name__


class RunstoreGroup(click.Group):
    """A command group that reports runstore's failures as one ``Error: ...`` line on
    stderr, exit status 1 (or the one the command chose with :func:`errors_exit_with`),
    with no traceback -- and never with a password in it.

    Reported so: every :class:`~runstore.errors.StorageError` (database errors name the
    database, its password masked), invalid input (``ValueError``, pydantic's
    ``ValidationError``), and Alembic's refusals (``CommandError``). Anything else is a
    bug, and keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (StorageError, ValueError, CommandError) as exc:
            meta = ctx.find_root().meta
            message = _one_line(exc)
            if isinstance(exc, DatabaseError) and _SHOWN_KEY in meta:
                message = f"{message} (database: {meta[_SHOWN_KEY]})"
            for secret in meta.get(_SECRETS_KEY, ()):
                message = message.replace(secret, "***")
            error = click.ClickException(message)
            status = meta.get(_ERROR_STATUS_KEY)
            if status is None:
                raise error from exc
            error.show()
            raise click.exceptions.Exit(status) from exc


def errors_exit_with(status: int) -> None:
    """Make the running command's errors exit with ``status`` instead of 1: for a command
    whose status 1 is an answer (``runs gate``: the candidate failed), so that a script can
    tell the answer from a failure to give one."""
    click.get_current_context().find_root().meta[_ERROR_STATUS_KEY] = status


_AGE = re.compile(r"(\d+)\s*([mhdw])")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_cutoff(value: str) -> datetime:
    """A moment in the past, in UTC: an age (``90m``, ``12h``, ``30d``, ``2w``: that long
    before now) or an ISO-8601 timestamp with a time zone.

    Raises:
        click.BadParameter: anything else (a usage error, exit status 2).
    """
    text = value.strip()
    age = _AGE.fullmatch(text)
    try:
        if age is not None:
            amount, unit = int(age.group(1)), _AGE_UNITS[age.group(2)]
            if amount == 0:
                raise click.BadParameter(f"{value!r} is no age: give more than 0{age.group(2)}")
            return datetime.now(UTC) - timedelta(**{unit: amount})
        moment = datetime.fromisoformat(text)
    except (OverflowError, ValueError):
        raise click.BadParameter(
            f"{value!r} is neither an age like 90m, 12h, 30d or 2w nor an ISO-8601 timestamp "
            f"with a time zone (2026-11-01T00:00:00Z), or it lies outside the years 1-9999"
        ) from None
    if moment.utcoffset() is None:
        raise click.BadParameter(
            f"{value!r} has no time zone: add one (Z or +02:00, say), so that it names one moment"
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise click.BadParameter(f"{value!r} lies outside the years 1-9999 in UTC") from None


def cutoff_option(*names: str, help: str) -> Callable[[_F], _F]:
    """A required option naming a moment in the past (see :func:`parse_cutoff`)."""

    def convert(context: click.Context, parameter: click.Parameter, value: str) -> datetime:
        return parse_cutoff(value)

    return click.option(*names, required=True, metavar="AGE|TIMESTAMP", callback=convert, help=help)


def confidence_option(command: _F) -> _F:
    """``--confidence C``: the confidence of the intervals printed, strictly between 0 and 1
    (the storage's own rule); given to the command as ``confidence``."""

    def convert(context: click.Context, parameter: click.Parameter, value: float) -> float:
        try:
            return confidence_argument(value)
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc)) from None

    return click.option(
        "--confidence",
        type=float,
        default=0.95,
        show_default=True,
        metavar="C",
        callback=convert,
        help="The confidence of each interval (paired t), between 0 and 1.",
    )(command)


# -- tags and metadata ---------------------------------------------------------------------

_TAG: TypeAdapter[str] = TypeAdapter(Tag)


def tags_option(*names: str, help: str) -> Callable[[_F], _F]:
    """A repeatable option naming tags of runs, given to the command as a tuple of
    distinct tags in the order given; a tag the storage would refuse (empty, too long) is
    a usage error."""

    def convert(
        context: click.Context, parameter: click.Parameter, values: tuple[str, ...]
    ) -> tuple[str, ...]:
        for value in values:
            if not 1 <= len(value) <= MAX_TAG_LENGTH:
                raise click.BadParameter(
                    f"{value!r:.80}: a tag has 1 to {MAX_TAG_LENGTH} characters, not {len(value)}"
                )
            try:
                _TAG.validate_python(value)
            except ValidationError as exc:
                raise click.BadParameter(f"{value!r:.80}: {exc.errors()[0]['msg']}") from None
        tags = tuple(dict.fromkeys(values))
        if len(tags) > MAX_TAGS:
            raise click.BadParameter(f"a run has at most {MAX_TAGS} tags, not {len(tags)}")
        return tags

    return click.option(*names, multiple=True, metavar="TAG", callback=convert, help=help)


def parse_meta(text: str, *, scalar: bool = False) -> tuple[str, JsonValue]:
    """``KEY=VALUE`` as ``--meta`` takes it: :func:`runstore.pairs.read_pair`'s rule
    (the value read as JSON when it parses, else as the text it is).

    Args:
        scalar: the value is a filter's, which compares a JSON scalar: an object or a
            list is refused.

    Raises:
        click.BadParameter: what ``read_pair`` refuses (a usage error, exit status 2).
    """
    try:
        return read_pair(text, scalar=scalar)
    except ValueError as exc:
        raise click.BadParameter(_one_line(exc)) from None


def meta_option(*names: str, scalar: bool, help: str) -> Callable[[_F], _F]:
    """A repeatable ``KEY=VALUE`` option (see :func:`parse_meta`), given to the command as
    a dict in the order given; a key given twice is a usage error. ``scalar`` for a
    filter's values."""

    def convert(
        context: click.Context, parameter: click.Parameter, values: tuple[str, ...]
    ) -> dict[str, JsonValue]:
        metadata: dict[str, JsonValue] = {}
        for text in values:
            key, value = parse_meta(text, scalar=scalar)
            if key in metadata:
                raise click.BadParameter(f"the key {key!r:.80} is given twice")
            metadata[key] = value
        return metadata

    return click.option(*names, multiple=True, metavar="KEY=VALUE", callback=convert, help=help)


def meta_text(key: str, value: JsonValue) -> str:
    """``KEY=VALUE`` as ``--meta`` reads it back (:func:`runstore.pairs.pair_text`); a key
    holding ``=``, which no ``--meta`` can name, as ``KEY: VALUE``."""
    return pair_text(key, value) or f"{key}: {json.dumps(value, ensure_ascii=False)}"
