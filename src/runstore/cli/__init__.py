"""The ``runstore`` command line: ``runstore db ...``, ``runstore runs ...``,
``runstore results ...`` and ``runstore ui``.

Installed as the ``runstore`` script and as ``python -m runstore``. The database comes
from ``--url`` (or ``RUNSTORE_DATABASE_URL``) and, on Postgres, ``--schema`` (or
``RUNSTORE_SCHEMA``); no message shows a password.

To add a group of commands: write a module beside these (``runs.py`` is the model) with a
:func:`click.group`, whose commands take :func:`~runstore.cli.common.database_options`
(and :func:`~runstore.cli.common.json_option` to print JSON), print through
:mod:`runstore.cli.output`, and let runstore's errors propagate -- :class:`RunstoreGroup`
reports them. Then register the group on :data:`main` below.
"""

from __future__ import annotations

import click

from runstore import __version__
from runstore.cli.common import RunstoreGroup
from runstore.cli.db import db
from runstore.cli.results import results
from runstore.cli.runs import runs
from runstore.cli.ui import ui

__all__ = ["main"]


@click.group(cls=RunstoreGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runstore")
def main() -> None:
    """Manage runstore's schema and the dataset runs it holds."""


main.add_command(db)
main.add_command(runs)
main.add_command(results)
main.add_command(ui)
