"""Files that several processes share: written whole or not at all, and locked with a timeout."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, text: str, *, durable: bool = False, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` in one step: a reader sees the old file or the new one,
    never half of it. The temporary file (``.<name>.*.tmp`` in the same folder) matches no
    ``*.json`` glob. ``durable``: fsync before the rename (state that must survive a crash).
    An existing file keeps its mode; a new one gets ``mode`` (default: as ``open`` would).
    An ``OSError`` leaves no temporary file behind."""
    path = Path(path)
    if mode is None:
        mode = 0o666 & ~_UMASK
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode & 0o777
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def write_json(path: Path, data: Any, *, mode: int = 0o600, **dump: Any) -> None:
    """``atomic_write`` of ``data`` as JSON (``dump``: ``json.dump``'s options), fsynced; a new
    file is private to its owner (state files may name processes and folders)."""
    atomic_write(path, json.dumps(data, **dump) + "\n", durable=True, mode=mode)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float | None = None, *, poll: float = 0.05) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing). ``timeout`` seconds at
    most (``None``: wait as long as it takes), then ``TimeoutError`` naming the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if timeout is None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"{path}: still locked after {timeout:g}s") from None
                    time.sleep(poll)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
