"""``runstore ui``: serve the read-only web viewer (:mod:`runstore.ui`) of a database.

Safe by default: it binds ``127.0.0.1``; another interface needs ``--token``, which
every request must then carry; the ``Host`` header must name the bound host (loopback
names on loopback). Needs the ``ui`` extra.
"""

from __future__ import annotations

import socket

import click

from runstore.cli.common import DatabaseAddress
from runstore.cli.common import database_options
from runstore.models import ListRunsInput
from runstore.models import StoragePagination

__all__ = ["ui"]

TOKEN_ENVVAR = "RUNSTORE_UI_TOKEN"


def _address(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The interface to listen on; any but loopback needs --token.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="The port to listen on; 0 takes any free port.",
)
@click.option(
    "--token",
    envvar=TOKEN_ENVVAR,
    show_envvar=True,
    metavar="TOKEN",
    help=(
        "Require this token on every request (Authorization: Bearer TOKEN, or "
        "?token=TOKEN once, then a cookie)."
    ),
)
@database_options(reads=True)
def ui(database: DatabaseAddress, host: str, port: int, token: str | None) -> None:
    """Serve a read-only web viewer of the runs, and print its address.

    Pages: the runs; a run's summary, histograms and results; a result; two runs
    compared item by item; exports. It runs until interrupted (Ctrl-C).
    """
    try:
        import uvicorn

        from runstore.ui import create_app
        from runstore.ui.guard import allowed_hosts
        from runstore.ui.guard import is_loopback
    except ImportError as exc:
        raise click.ClickException(
            f'the viewer needs the ui extra: pip install "runstore[ui]" ({exc})'
        ) from exc
    if not is_loopback(host) and not token:
        raise click.UsageError(
            f"--host {host} is reachable from other machines: give --token TOKEN "
            f"(or {TOKEN_ENVVAR}) so that only those who have it can read the runs."
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
        listening.listen(128)  # from here, connections wait for the server to answer
    except OSError as exc:
        listening.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    with database.storage() as storage, listening:
        # fail now, not on the first page, when the database is not there or behind
        storage.list_runs(ListRunsInput(pagination=StoragePagination(per_page=1)))
        app = create_app(storage, token=token, hosts=tuple(allowed_hosts(host)))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        click.echo(_address(host, listening.getsockname()[1]), nl=True)
        uvicorn.Server(config).run(sockets=[listening])
