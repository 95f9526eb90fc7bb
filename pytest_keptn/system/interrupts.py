"""SIGINT and SIGTERM during a run: the first interrupts, the next ones hurry the cleanup.

Signal handlers belong to the process, so this state is the process's (module level), not a
session's: one pytest session runs in a process at a time.

The first signal raises ``KeyboardInterrupt`` (``Terminated`` for SIGTERM, a CI system
cancelling the job) as pytest expects: the session stops, the running sequence fails and its
canary is rolled back. From then on the run is cleaning up, and that cleanup is bounded (every
stop is SIGTERM with a timeout, then SIGKILL): a further signal (an impatient second Ctrl-C,
or GitHub Actions' SIGTERM after its SIGINT) no longer raises, which would leave a traceback
and an unrecorded sequence, but makes the cleanup kill what it still waits for at once
(:func:`hurrying`). Issue 14 item 8, docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Terminated", "cleaning_up", "hurry", "hurrying", "install", "interrupt",
           "interrupted", "on_hurry", "quiet", "reason", "uninstall"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI system cancelling the job), handled as pytest handles Ctrl-C."""


_HURRY = threading.Event()
_previous: dict[int, Any] = {}
_callbacks: list[Callable[[], None]] = []
_reason = ""  # why the run was interrupted; empty while it was not
_quiet = False  # what is left is someone else's teardown: hurry without saying so
TERMINATED = False  # the interruption was a SIGTERM


def interrupted() -> bool:
    return bool(_reason)


def reason() -> str:
    """What interrupted the run, for the sequence record."""
    return _reason or "interrupted (KeyboardInterrupt)"


def hurrying() -> bool:
    """Whether a further signal came during the cleanup: stop with SIGKILL, do not wait."""
    return _HURRY.is_set()


def on_hurry(callback: Callable[[], None]) -> None:
    """Call ``callback`` (from the signal handler) at each further signal during the cleanup."""
    _callbacks.append(callback)


def install() -> None:
    """Handle SIGINT and SIGTERM as the module says; idempotent; only from the main thread
    and only where nobody else handles them (a debugger, the user's own handler)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, default in ((signal.SIGINT, signal.default_int_handler),
                         (signal.SIGTERM, signal.SIG_DFL)):
        if sig in _previous:
            continue
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) is default:
                _previous[sig] = signal.signal(sig, _on_signal)


def uninstall() -> None:
    """Give SIGINT and SIGTERM back and forget the interruption (the session has ended)."""
    global _reason, TERMINATED, _quiet
    for sig, handler in list(_previous.items()):
        with contextlib.suppress(ValueError, OSError, TypeError):
            if signal.getsignal(sig) is _on_signal:
                signal.signal(sig, handler)
        del _previous[sig]
    _reason, TERMINATED, _quiet = "", False, False
    _HURRY.clear()
    _callbacks.clear()


def quiet() -> None:
    """The run has recorded everything: a further signal (xdist's teardown interrupts a worker
    that is still running 5 s after it began) still hurries, but says nothing."""
    global _quiet
    _quiet = True


def cleaning_up() -> None:
    """The session was interrupted, by our handler or otherwise (a ``KeyboardInterrupt`` from
    elsewhere): from now on a signal hurries the cleanup instead of interrupting it."""
    global _reason
    _reason = _reason or "interrupted (KeyboardInterrupt)"


def interrupt(why: str, source: str, *, terminated: bool = False) -> None:
    """Interrupt the run for ``why`` (``source`` says what came: a signal, the xdist
    controller's stop), or hurry its cleanup when it was interrupted already."""
    __tracebackhide__ = True  # pytest shows where the run was, not this handler
    global _reason, TERMINATED
    if _reason:
        hurry(source)
        return
    _reason, TERMINATED = why, terminated
    raise Terminated(why) if terminated else KeyboardInterrupt(why)


def _on_signal(signum: int, frame: object) -> None:
    __tracebackhide__ = True
    if signum == signal.SIGTERM:
        interrupt("terminated (SIGTERM)", "SIGTERM", terminated=True)
    else:
        interrupt("interrupted (KeyboardInterrupt)", "SIGINT")


def hurry(source: str) -> None:
    """Hurry the cleanup: ``source`` (a signal's name) came during it."""
    first = not _HURRY.is_set()
    _HURRY.set()
    if not _quiet:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"\n[keptn] {source} during the cleanup of the interrupted run: "
                             "stopping what is left with SIGKILL"
                             + (", then recording the sequences and exiting\n" if first else "\n"))
            sys.stderr.flush()
    for callback in list(_callbacks):
        with contextlib.suppress(Exception):
            callback()
