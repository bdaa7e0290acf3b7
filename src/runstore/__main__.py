"""``python -m runstore``: the ``runstore`` command."""

from __future__ import annotations

from runstore.cli import main

if __name__ == "__main__":
    main(prog_name="runstore")
