"""Whether a recorded process still runs: what tells a live record (execution, batch job, server) from a stale one.

A pid alone can be reused by an unrelated process after the recorded one died; a record that also keeps
the process's start time (`process_start_time`, from /proc/<pid>/stat) names exactly one process.
"""

from __future__ import annotations

import os

__all__ = ["pid_alive", "process_start_time", "same_process"]


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists (one we may not signal counts as existing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (/proc/<pid>/stat field 22); None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    try:  # the command name (field 2) is in parentheses and may itself hold spaces or parentheses
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def same_process(pid: int, started: int | None) -> bool:
    """True if `pid` runs and is the process that started at `started` (None: the start time is not known,
    so a live pid is taken as the same process)."""
    if not pid_alive(pid):
        return False
    now = process_start_time(pid)
    return started is None or now is None or now == started
