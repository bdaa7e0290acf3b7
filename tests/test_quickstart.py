"""The README's examples run as printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quickstart_records_and_pages_through_a_run(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py"), f"sqlite:///{tmp_path}/q.db"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert "completed" in lines[0]
    assert [line for line in lines if line.startswith("-- page")] == [
        f"-- page {page} of results (12 in all)" for page in range(3)
    ]
    assert sum(line.strip().startswith("item-") for line in lines) == 12


def test_the_comparison_example_compares_two_runs(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO / "examples" / "compare_runs.py"), f"sqlite:///{tmp_path}/c.db"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("candidate: 20 results, error rate ")
    assert lines[3].startswith("20 items in both: accuracy +")
