"""Child processes: start, readiness, stop, and the no-orphans bookkeeping.

Every process a deployer or load driver starts runs in its own process group
(``start_new_session=True``) so that stopping it also stops whatever it forked (a Locust
master's workers, a shell's children). A :class:`ProcessRegistry`, owned by the pytest session
and reached by deployers and load drivers as ``ctx.processes``, remembers each one with its
role; ``cleanup()`` stops them all at session end, on SIGTERM and from ``atexit``, sparing
primaries when the user asked to keep them serving.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_keptn.system import interrupts

# Every process we start carries ``PYTEST_KEPTN_PROC=<tag>`` in its environment, and so does
# everything it starts (a shell's server, Locust's workers, a daemon that left the process
# group): stopping it finds them all in /proc, even after the group's leader has died.
TAG_ENV = "PYTEST_KEPTN_PROC"


@dataclass
class Started:
    """One process this session started."""

    pid: int
    role: str  # "canary" | "primary" | "direct" | "load"
    keep: bool = False  # survive the session (a primary with keep_primaries)
    on_stop: Callable[[int], None] | None = None  # e.g. drop it from the state file
    # whether another process of the run took it over (see ``ProcessRegistry.hand_over``)
    handed_over: Callable[[int], bool] | None = None
    tag: str | None = None  # its TAG_ENV value
    popen: Any = None  # its subprocess.Popen when this process started it (exit codes)
    # seconds the cleanup lets it exit by itself before stopping it (a Locust runner that
    # writes its HTML report after it gave its result)
    drain: float = 0.0


class ProcessRegistry:
    """The processes one pytest session started, and the run they belong to."""

    def __init__(self, run_id: str = "", *, hand_over: bool = False) -> None:
        self.run_id = run_id  # the run folder: the same on every xdist worker of the run
        # Under pytest-xdist a worker that deployed a canary may finish before the worker that
        # evaluates and releases it: a worker's cleanup leaves what the deploy state still
        # records to the controller, which stops it at the end (``deploy.local.cleanup_run``).
        self.hand_over = hand_over
        self.held_leases: set[tuple[str, str]] = set()  # (state folder, stage/service) taken
        self._lock = threading.RLock()
        self._started: dict[int, Started] = {}
        self._at_exit = False

    def run_owner(self) -> tuple[int, int | None]:
        """The process that owns this run (pid, start ticks): the session's own process, or
        the xdist controller whose run folder says so in its ``owner`` file."""
        if self.run_id:
            try:
                pid, ticks = (int(x) for x in (Path(self.run_id) / "owner").read_text().split())
                return pid, ticks
            except (OSError, ValueError):
                pass
        return os.getpid(), process_start_ticks(os.getpid())

    def track(self, started: Started) -> None:
        """Remember a process (and make sure it is stopped at exit, even without a session end)."""
        with self._lock:
            self._started[started.pid] = started
            if not self._at_exit:
                atexit.register(self.cleanup)
                interrupts.install()
                self._at_exit = True

    def get(self, pid: int) -> Started | None:
        with self._lock:
            return self._started.get(pid)

    def forget(self, pid: int) -> Started | None:
        with self._lock:
            return self._started.pop(pid, None)

    def remaining(self) -> list[Started]:
        """What is still tracked (after ``cleanup``: the primaries kept serving)."""
        with self._lock:
            return list(self._started.values())

    def update(self, pid: int, *, role: str | None = None, keep: bool | None = None) -> None:
        with self._lock:
            started = self._started.get(pid)
            if started is None:
                return
            if role is not None:
                started.role = role
            if keep is not None:
                started.keep = keep

    def pids(self) -> dict[int, str]:
        with self._lock:
            return {pid: s.role for pid, s in self._started.items()}

    def cleanup(self) -> list[int]:
        """Stop every process this session started, except primaries marked to keep serving.

        Safe to call more than once (session end, ``atexit``). Returns the stopped pids.
        """
        with self._lock:
            victims = [s for s in self._started.values() if not s.keep]
        stopped: list[int] = []
        for started in victims:
            if self.hand_over and started.handed_over is not None:
                try:
                    taken = started.handed_over(started.pid)
                except Exception:
                    taken = False
                if taken:
                    self.forget(started.pid)
                    continue
            if started.drain and started.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    started.popen.wait(started.drain)
            if stop_pid(started.pid, timeout=3.0, tag=started.tag):
                stopped.append(started.pid)
            self.forget(started.pid)
            if started.on_stop is not None:
                try:
                    started.on_stop(started.pid)
                except Exception:  # bookkeeping must never stop the cleanup
                    pass
        return stopped


_DEFAULT: ProcessRegistry | None = None


def default_registry() -> ProcessRegistry:
    """The registry of contexts made by hand, outside a pytest session (a script calling the
    local deployer): one per interpreter, so that a release through a second context keeps
    the primary the first one started. A session passes its own."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ProcessRegistry()
    return _DEFAULT


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot); None when it is gone.

    Stored with the pid so that a recycled pid is not mistaken for our process.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields and fields[0] == "Z":  # a zombie is as good as gone
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether ``pid`` still runs (and, when given, is the process that started at ``start_ticks``)."""
    if pid <= 0:
        return False
    ticks = process_start_ticks(pid)
    if ticks is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # no /proc (not Linux): fall back to signal 0
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return start_ticks is None or ticks == start_ticks


def new_tag() -> str:
    return uuid.uuid4().hex


def tagged_env(tag: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child started with ``tag`` (see ``TAG_ENV``)."""
    return dict(os.environ if base is None else base, **{TAG_ENV: tag})


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if not fields or fields[0] == "Z" else fields


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def members(pid: int, tag: str | None = None) -> set[int]:
    """The live processes of the process group ``pid`` and those carrying ``tag``."""
    me = os.getpid()
    needle = f"{TAG_ENV}={tag}".encode() if tag else None
    found: set[int] = set()
    for other in _pids():
        if other == me:
            continue
        fields = _stat_fields(other)
        if fields is None:
            continue
        if len(fields) > 2 and fields[2] == str(pid):
            found.add(other)
        elif needle is not None:
            try:
                with open(f"/proc/{other}/environ", "rb") as env:
                    if needle in env.read().split(b"\0"):
                        found.add(other)
            except OSError:
                continue
    return found


def describe_pids(pids: set[int]) -> str:
    """``pid 12 (python -m helloserver ...), pid 13 (...)`` for a message."""
    out = []
    for pid in sorted(pids):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
        except OSError:
            cmd = "?"
        out.append(f"pid {pid} ({cmd[:80]})")
    return ", ".join(out)


def left_behind(pid: int, *, start_ticks: int | None = None, tag: str | None = None) -> set[int]:
    """Processes of the build started as ``pid`` still running although ``pid`` has exited."""
    if alive(pid, start_ticks):
        return set()
    if start_ticks is not None and process_start_ticks(pid) is not None:
        return members(-1, tag) if tag else set()  # the pid is recycled: only the tag counts
    return members(pid, tag)


def stop_pid(pid: int, *, timeout: float = 5.0, start_ticks: int | None = None,
             tag: str | None = None) -> bool:
    """SIGTERM the process group of ``pid`` and every process carrying ``tag``, then SIGKILL
    what is left after ``timeout``. The group is signalled even when its leader has exited
    (a shell killed before its server, a Locust master before its workers). True if ``pid``
    itself was running."""
    running = alive(pid, start_ticks)
    if not running:
        _reap(pid)
    # a live process with this pid but another start time is someone else's: spare its group
    recycled = start_ticks is not None and not running and process_start_ticks(pid) is not None
    group = -1 if recycled else pid
    # a further signal during the cleanup of an interrupted run: no grace (interrupts.py)
    stages = ((signal.SIGKILL, 2.0),) if interrupts.hurrying() else (
        (signal.SIGTERM, timeout), (signal.SIGKILL, 2.0))
    for sig, wait in stages:
        victims = members(group, tag) if (tag or not recycled) else set()
        if not victims and not alive(pid, start_ticks):
            return running
        if not recycled:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            if running:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        for other in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(other, sig)
        # one /proc scan per signal (reading every environ costs ~0.2 ms a process): then
        # only the processes found are watched
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not (sig == signal.SIGTERM and interrupts.hurrying()):
            _reap(pid)
            if not alive(pid, start_ticks) and not any(alive(v) for v in victims):
                break
            time.sleep(0.02)
    return running


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def wait_ready(
    url: str, is_running: Callable[[], bool], timeout: float, *, interval: float = 0.05
) -> str | None:
    """Poll ``url`` until it answers 2xx. Returns None when ready, else why not (at once for a
    4xx answer)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if not is_running():
            return "exited"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if 200 <= response.status < 300:
                    return None
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500:
                # the build is up and says this path does not exist or is not for us: waiting
                # out the timeout would not change that
                return f"answered HTTP {exc.code}"
            last = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            return f"not ready after {timeout:g}s ({last})"
        time.sleep(interval)


def log_tail(path: Path | None, lines: int = 8, limit: int = 600) -> str:
    """The last lines of a log, joined with `` | `` so that an error stays one line."""
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    tail = " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())
    return tail[-limit:]


@contextlib.contextmanager
def shielded(what: str) -> Iterator[None]:
    """Hold SIGINT and SIGTERM back during ``what`` (a release that must finish once it has
    switched): the first signal is raised when the block ends, a second one at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous: dict[int, Any] = {}

    def defer(signum: int, frame: object) -> None:
        if pending:  # an impatient second signal: stop now, as the previous handler would
            pending.clear()
            _deliver(signum, previous.get(signum))
            return
        pending.append(signum)
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"\n[keptn] {signal.Signals(signum).name} during {what}: finishing "
                             "it first (signal again to stop at once)\n")
            sys.stderr.flush()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, defer)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler)
        if pending:
            _deliver(pending[0], previous.get(pending[0]))


def _deliver(signum: int, handler: Any) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signum)
