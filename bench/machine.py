"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pydantic
import sqlalchemy


def _field(path: str, prefix: str, separator: str) -> str:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return "unknown"
    found = [
        line.split(separator, 1)[1].strip().strip('"') for line in lines if line.startswith(prefix)
    ]
    return found[0] if found else "unknown"


def _revision() -> str:
    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], capture_output=True, text=True, check=True
        ).stdout

    try:
        head, dirty = (
            git("rev-parse", "--short", "HEAD").strip(),
            git("status", "--porcelain", "src"),
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (src/ modified)" if dirty.strip() else head


def describe_machine(postgres: dict[str, str] | None) -> list[tuple[str, str]]:
    """(label, value) pairs: hardware, OS, interpreter, databases and library versions."""
    memory = _field("/proc/meminfo", "MemTotal:", ":").split()[0]
    rows = [
        ("CPU", _field("/proc/cpuinfo", "model name", ":")),
        ("Cores", str(os.cpu_count())),
        ("RAM", f"{int(memory) / 2**20:.1f} GiB" if memory.isdigit() else memory),
        ("OS", f"{_field('/etc/os-release', 'PRETTY_NAME=', '=')} (Linux {platform.release()})"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("SQLite", sqlite3.sqlite_version),
    ]
    if postgres:
        rows.append(("PostgreSQL", postgres.pop("server_version")))
        rows.append(("PostgreSQL settings", ", ".join(f"{k}={v}" for k, v in postgres.items())))
    rows += [("SQLAlchemy", sqlalchemy.__version__), ("psycopg", psycopg.__version__)]
    return [*rows, ("pydantic", pydantic.VERSION), ("runstore revision", _revision())]
