"""One server per group, through the real CLI: a second `endpoint serve` / `lambda serve` is refused in one
line naming the running one (exit 2) unless `--replace`, and a server removes only its own registration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

GROUP = "greenlight-models"
BOUND_SECONDS = 120


def _start(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "greenlight.cli", *args, "--port", "0"],
                            env=os.environ | {"GREENLIGHT_HOME": str(home)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _registered(record: Path, pid: int, proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + BOUND_SECONDS
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            data = json.loads(record.read_text())
            if data["pid"] == pid:
                return data
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    pytest.fail(f"pid {pid} never registered in {record}")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=BOUND_SECONDS)[1]


@pytest.mark.parametrize("command, record_name", [(("endpoint", "serve"), "endpoint.serving.json"),
                                                  (("lambda", "serve"), "lambda.serving.json")])
def test_a_second_server_is_refused_unless_it_replaces_and_each_removes_only_its_own_registration(
        tmp_path, command, record_name):
    home, record = tmp_path / "home", tmp_path / "home" / "deployments" / GROUP / record_name
    first = _start(home, *command)
    try:
        mine = _registered(record, first.pid, first)
        refused = subprocess.run([sys.executable, "-m", "greenlight.cli", *command, "--port", "0"],
                                 env=os.environ | {"GREENLIGHT_HOME": str(home)}, capture_output=True, text=True,
                                 timeout=BOUND_SECONDS)
        # the empty registry's warning may precede it; the refusal itself is one line
        lines = [line for line in refused.stderr.strip().splitlines() if not line.startswith("greenlight: warning:")]
        assert refused.returncode == 2 and len(lines) == 1, refused.stderr
        assert f"pid {first.pid}" in lines[0] and mine["url"] in lines[0] and "--replace" in lines[0], lines
        assert "Traceback" not in refused.stderr and "internal error" not in refused.stderr
        assert json.loads(record.read_text())["pid"] == first.pid  # the refused one changed nothing

        second = _start(home, *command, "--replace")
        try:
            _registered(record, second.pid, second)
            _stop(first)
            assert json.loads(record.read_text())["pid"] == second.pid  # the first did not remove another's record
        finally:
            _stop(second)
        assert not record.exists()  # its owner removed it
    finally:
        if first.poll() is None:
            _stop(first)
