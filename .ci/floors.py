"""Print pip constraints pinning every declared dependency to its lower bound.

Reads ``pyproject.toml``: the project's dependencies and the extras named on the command
line. A requirement ``name>=X`` becomes ``name==X``; one without a lower bound is an
error, so every dependency keeps a floor that CI installs and tests.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
for extra in sys.argv[1:]:
    requirements += project["optional-dependencies"][extra]

floors: dict[str, str] = {}
for requirement in requirements:
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?\s*>=\s*([^,;\s]+).*", requirement)
    if match is None:
        sys.exit(f"no lower bound to test: {requirement!r}")
    name, version = match.group(1).lower(), match.group(3)
    floors[name] = version
    if name == "psycopg" and "binary" in (match.group(2) or ""):
        floors["psycopg-binary"] = version
print("\n".join(f"{name}=={version}" for name, version in sorted(floors.items())))
