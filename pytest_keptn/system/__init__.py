"""The process and file toolkit every room uses: ``processes`` (start, track, stop, alive, free
port, log tail; the session's :class:`~pytest_keptn.system.processes.ProcessRegistry`) and
``files`` (atomic write, file lock with a timeout)."""
