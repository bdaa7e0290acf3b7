"""Write the README's complete programs (the Python blocks marked as such) and the
examples into a directory, for a type checker to check as a user's project would."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

target = Path(sys.argv[1])
target.mkdir(parents=True, exist_ok=True)
MARKER = "<!-- a complete program: CI type-checks it -->"
readme = Path("README.md").read_text()
programs = re.findall(re.escape(MARKER) + r"\n```python\n(.*?)```", readme, flags=re.DOTALL)
if not programs:
    sys.exit("the README marks no complete program")
for number, program in enumerate(programs):
    (target / f"readme_{number}.py").write_text(program)
for example in Path("examples").glob("*.py"):
    shutil.copy(example, target / example.name)
print(f"{len(programs)} README programs and the examples in {target}")
