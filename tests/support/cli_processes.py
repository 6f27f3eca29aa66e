"""Helpers for e2e tests that drive the real CLI in separate processes: run a command, wait for a serving
command to register itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BOUND_SECONDS = 120  # upper bound on every wait; tests never assert how long anything took


def greenlight(home: Path, *args: str, ok: tuple[int, ...] = (0,), timeout: float = 600) -> subprocess.CompletedProcess:
    """`greenlight ARGS` with GREENLIGHT_HOME=home; fails the test unless it exits with one of `ok`."""
    env = os.environ | {"GREENLIGHT_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "greenlight.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode in ok, f"greenlight {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def registered_url(record: Path, proc: subprocess.Popen, what: str, bound: float = BOUND_SECONDS) -> str:
    """The URL a serving command (`what`, for the message) wrote to its registration `record`; fails the test
    if the process exits first or nothing is registered within `bound` seconds."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited: {proc.stderr.read() if proc.stderr else ''}")
        if record.exists():
            try:
                return json.loads(record.read_text())["url"]
            except ValueError:  # being written
                pass
        time.sleep(0.05)
    pytest.fail(f"{what} never registered itself")
