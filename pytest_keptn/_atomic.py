"""Files other processes read while we write them: replaced whole, never seen half-written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any, *, mode: int = 0o600, **dump: Any) -> None:
    """Replace ``path`` with ``data`` as JSON: a temp file in the same folder (``.<name>.*.tmp``,
    which no ``*.json`` glob matches), fsynced, then renamed over it. An existing file keeps its
    mode; a new one gets ``mode``."""
    path = Path(path)
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), mode)
            json.dump(data, handle, **dump)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
