"""Names that end up in file names: stages, sequences, services, projects.

A stage's name goes into the names of its sequence state, lock, event and log files, so a name
like ``../../x`` would write outside the run and events folders. Keptn's own names are
DNS-label-like (``^[a-z][a-z0-9-]*$``); we refuse only what makes a path or a terminal line
misbehave, so that existing projects with capitals or dots keep working.
"""

from __future__ import annotations


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a stage, sequence, service or project name, or None."""
    if name == "":
        return "empty name"
    if "\x00" in name:
        return "contains a NUL character"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return "contains a control character"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if ".." in name:
        return "contains '..'"
    return None
