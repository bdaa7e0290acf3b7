"""Write every Python block of the README that a user may copy -- each block with an
import -- and the examples into a directory, for a type checker to check as a user's
project would."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

target = Path(sys.argv[1])
target.mkdir(parents=True, exist_ok=True)
readme = Path("README.md").read_text()
blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
IMPORT = re.compile(r"^(?:from \S+ import |import )", flags=re.MULTILINE)
copyable = [block for block in blocks if IMPORT.search(block)]
if not copyable:
    sys.exit("the README has no Python block with an import")
for number, block in enumerate(copyable):
    (target / f"readme_{number}.py").write_text(block)
for example in Path("examples").glob("*.py"):
    shutil.copy(example, target / example.name)
print(f"{len(copyable)} README blocks (of {len(blocks)}) and the examples in {target}")
