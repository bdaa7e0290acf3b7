"""``runstore results``: a run's results out of the database, as a file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runstore.cli.common import DatabaseAddress
from runstore.cli.common import database_options
from runstore.errors import RunNotFoundError
from runstore.export import EXPORT_FORMATS
from runstore.limits import MAX_PAGE_SIZE

__all__ = ["results"]


@click.group()
def results() -> None:
    """Export a run's results."""


@results.command()
@click.argument("run_id")
@click.option(
    "--format",
    "format_",
    type=click.Choice(list(EXPORT_FORMATS)),
    default="jsonl",
    show_default=True,
    help="JSON lines, CSV, or Parquet (needs runstore[parquet]).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The file to write (default: RUN_ID.FORMAT in the current directory).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_PAGE_SIZE),
    default=2_000,
    show_default=True,
    help="Results read, and held in memory, at a time.",
)
@database_options(reads=True)
def export(
    database: DatabaseAddress, run_id: str, format_: str, output: Path | None, batch_size: int
) -> None:
    """Write every result of RUN_ID to a file, streaming: memory stays bounded, and the
    file appears whole at the end or not at all (an existing one is left as it was)."""
    destination = output if output is not None else Path(f"{run_id}.{format_}")
    with database.storage() as storage:
        run = storage.get_run_by_id(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        total = run.result_count
        with click.progressbar(
            length=max(total, 1),
            label=f"exporting {run_id}",
            file=sys.stderr,
            show_pos=True,
        ) as bar:
            shown = 0

            def progress(written: int) -> None:
                nonlocal shown
                bar.update(min(written, total) - shown)
                shown = min(written, total)

            written = storage.export_results(
                run_id, destination, format=format_, batch_size=batch_size, progress=progress
            )
    click.echo(f"{written} results of {run_id} written to {destination}", err=True)
