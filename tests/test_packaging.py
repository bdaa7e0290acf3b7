"""The built wheel carries the migrations: init() works from a plain install."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

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
