"""The peer: ``@mastra/pg``'s experiments store, on a fresh database of its own.

Its packages are installed with npm into a cache folder at run time (reused once there);
``bench/peer/driver.mjs`` drives the store through the workload of runstore's Postgres rows
and prints its medians, which go next to runstore's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.backends import Settings
from bench.backends import conninfo
from bench.backends import fresh_database
from bench.backends import log
from bench.cases import add_result
from bench.cases import list_pages
from bench.cases import runs
from bench.cases import update_run
from bench.report import Measurement
from bench.report import PeerRow
from bench.report import render_peer

SOURCE = Path(__file__).resolve().parents[1] / "peer"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "runstore-bench/peer"
ROWS = {  # the driver's name for an operation: runstore's row
    "create_run": runs.CREATE,
    "add_result": add_result.OPERATION,
    "get_run": runs.GET,
    "update_run": update_run.OPERATION,
    "list_first_page": list_pages.FIRST,
    "list_last_page": list_pages.LAST,
}


class SkippedError(Exception):
    """Why the peer was not measured."""


def _run(command: list[str], what: str, timeout: float) -> str:
    try:
        done = subprocess.run(command, cwd=CACHE, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SkippedError(f"{what} failed ({exc})") from exc
    if done.returncode != 0:
        last = [line for line in done.stderr.splitlines() if line.strip()][-2:]
        raise SkippedError(f"{what} failed ({' '.join(last)[:300]})")
    return done.stdout


def _measure(postgres_url: str, settings: Settings) -> dict[str, Any]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SkippedError("`node` and `npm` are not installed")
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "driver.mjs"):
        shutil.copyfile(SOURCE / name, CACHE / name)
    pins = json.loads((SOURCE / "package.json").read_text())["dependencies"]
    manifests = {name: CACHE / "node_modules" / name / "package.json" for name in pins}
    if any(
        not m.exists() or json.loads(m.read_text())["version"] != pins[n]
        for n, m in manifests.items()
    ):
        log(f"peer: npm install into {CACHE}")
        _run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], "npm install", 900)
    with fresh_database(postgres_url, "runstore_bench_peer") as url:
        config = {
            "connectionString": conninfo(url),
            "listRows": settings.list_rows,
            "samples": settings.single_samples // 4,
            "pageSamples": settings.deep_samples * 2,
            "warmup": settings.warmup // 2,
        }
        report: dict[str, Any] = json.loads(
            _run(["node", "driver.mjs", json.dumps(config)], "the peer's driver", 1800)
        )
    return report | {"config": config}


def section(settings: Settings, postgres_url: str, rows: list[Measurement]) -> str:
    """The peer's results for the document, or why it was not measured."""
    ours = {row.operation: row.runstore for row in rows if row.backend == "Postgres"}
    try:
        if settings.quick:
            raise SkippedError("skipped in quick mode")
        if not ours:
            raise SkippedError("Postgres was not measured (--only sqlite)")
        log("peer: @mastra/pg experiments store")
        report = _measure(postgres_url, settings)
    except SkippedError as skipped:
        log(f"peer: {skipped}")
        return f"**Peer not measured: {skipped}.**"
    table = [PeerRow(ROWS[k], ours[ROWS[k]], v / 1e6) for k, v in report["operations"].items()]
    for row in table:
        log(f"  peer, {row.operation}: {row.peer * 1e3:.2f} ms ({row.runstore / row.peer:.2f}x)")
    config, versions = report["config"], report["versions"]
    return "\n".join(
        [
            render_peer(table),
            "",
            f"Peer: `@mastra/pg` {versions['@mastra/pg']}, `@mastra/core` "
            f"{versions['@mastra/core']}, Node {versions['node']}; {config['warmup']} warm-up "
            f"calls, then {config['samples']} samples ({config['pageSamples']} for pages); "
            f"its list run was seeded in {report['seedSeconds']:.1f} s.",
        ]
    )
