"""Print pip constraints pinning every library pyproject.toml declares to its floor.

``pytest>=8.3,<10`` becomes ``pytest==8.3``: the core, every extra, and the libraries the tests
import. The lint and build tools (ruff, mypy, types-*, build, twine) are left out: the floors
run (scripts/check_packaging.sh) runs the tests, not the linters. A requirement without a floor
is an error: every declared library must say the oldest version it works with.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

TOOLS = {"ruff", "mypy", "build", "twine"}


def floors(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$", requirement)
        if match is None:
            raise SystemExit(f"{pyproject}: cannot read requirement {requirement!r}")
        name, specifier = match.group(1), match.group(3)
        if name == project["name"] or name in TOOLS or name.startswith("types-"):
            continue
        floor = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", specifier)
        if floor is None:
            raise SystemExit(f"{pyproject}: {requirement!r} has no floor (>=)")
        pins[name.lower()] = f"{name}=={floor.group(1)}"
    return sorted(pins.values(), key=str.lower)


if __name__ == "__main__":
    print("\n".join(floors(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
