"""The built wheel carries the migrations: init() and the ``runstore`` command work from
a plain install, outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from runstore.migrations import head_revision

REPO = Path(__file__).resolve().parent.parent

SCRIPT = """
import pathlib, sys
from datetime import datetime, timezone
import runstore
from runstore.migrations import migrations_directory

package = pathlib.Path(runstore.__file__).parent
assert "site-packages" in str(package), package
assert migrations_directory() == package / "_migrations", migrations_directory()

with runstore.SqlRunsStorage(sys.argv[1]) as storage:
    run = storage.create_run(runstore.CreateRunInput(
        dataset_id="d", dataset_version=datetime.now(timezone.utc),
        target_type="agent", target_id="a", total_items=1))
    assert storage.get_run_by_id(run.id) == run
print("wrote", run.id)
"""


@pytest.mark.slow
def test_the_wheel_installs_and_migrates_a_sqlite_file(tmp_path: Path) -> None:
    """One wheel, built and installed once, for the library and for its command."""
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp_path],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("runstore-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "runstore/_migrations/env.py" in names
    assert "runstore/_migrations/versions/0001_initial.py" in names
    assert "runstore/py.typed" in names
    # the viewer's every asset: its pages need no network
    for asset in ("templates/base.html", "templates/run.html", "static/viewer.css"):
        assert f"runstore/ui/{asset}" in names
    assert "runstore/ui/static/viewer.js" in names

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(wheel)], check=True, capture_output=True
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    completed = subprocess.run(
        [python, "-c", SCRIPT, f"sqlite:///{workdir / 'runs.db'}"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("wrote ")

    # the installed command, on its own packaged migrations: no alembic.ini, no checkout
    runstore = environment / "bin" / "runstore"
    url = f"sqlite:///{workdir / 'cli.db'}"
    bare = {key: value for key, value in os.environ.items() if not key.startswith("RUNSTORE_")}

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [runstore, *arguments],
            cwd=workdir,
            env=bare,
            capture_output=True,
            text=True,
            check=False,
        )

    assert not (workdir / "alembic.ini").exists()
    assert run("db", "current", "--check-head", "--url", url).returncode == 3  # not at head
    upgraded = run("db", "upgrade", "--url", url)
    assert upgraded.returncode == 0, upgraded.stderr
    current = run("db", "current", "--check-head", "--url", url)
    assert current.returncode == 0, current.stderr
    assert current.stdout == f"{head_revision()}\n"
    history = run("db", "history", "--verbose")
    assert "runstore/_migrations/versions/0001_initial.py" in history.stdout, history.stdout
    assert run("runs", "list", "--url", url).stdout == "No runs.\n"
    listed = run("runs", "list", "--json", "--url", f"sqlite:///{workdir / 'runs.db'}")
    assert listed.returncode == 0, listed.stderr
    assert [entry["id"] for entry in json.loads(listed.stdout)] == [completed.stdout.split()[1]]
    as_module = subprocess.run(
        [python, "-m", "runstore", "db", "check", "--url", url],
        cwd=workdir,
        env=bare,
        capture_output=True,
        text=True,
        check=False,
    )
    assert as_module.returncode == 0, as_module.stderr
