"""The malformed-file corpus: each file must give a one-line SpecError naming file and field.

``expected.json`` maps a file name to a substring expected in the message after the file name;
the prefix (``slo-``, ``sli-``, ``shipyard-``) says which loader reads it. ``huge_file()`` writes
the one case too big to keep in the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent


def cases() -> list[tuple[Path, str, str]]:
    """(path, kind, expected substring) for every file of the corpus."""
    expected = json.loads((HERE / "expected.json").read_text(encoding="utf-8"))
    return [(HERE / name, name.split("-", 1)[0], sub) for name, sub in sorted(expected.items())]


def huge_file(folder: Path) -> tuple[Path, str, str]:
    """An slo.yaml larger than the 2 MiB limit."""
    path = folder / "slo-huge.yaml"
    with path.open("w", encoding="utf-8") as out:
        out.write("objectives:\n")
        line = "  - sli: " + "x" * 100 + "\n"
        for _ in range(3 * 1024 * 1024 // len(line) + 1):
            out.write(line)
    return path, "slo", "larger than"
