"""Job processes started warm: forked from a server that has already imported the scripts' libraries.

A local run starts three job processes (Preprocess, Train, Evaluate), and each fresh interpreter
spends about a second importing pandas, scikit-learn and numpy before the script's first line of
work (on the default data the scripts' own work is well under a second). `WarmStarter.start()`
launches a server (warm_server.py) that imports PRELOAD once, in the background: on another CPU,
while the CLI builds the pipeline definition. Each job is then a fresh process forked from it, which
runs the script as `python script.py args` would: its own argv, environment, working directory,
`sys.path[0]` (the script's folder), stdout and stderr into the job's log, `__main__`, unbuffered
output, the interpreter's exit code, and its traceback on an uncaught exception.

What a fork cannot give is an import-time environment of the job's own: the libraries were imported
with the CLI's environment. So a job whose environment differs from the server's in anything but
the variables the runner and the SDK set (SM_*, AWS_*, SAGEMAKER_*, GREENLIGHT_*, PYTHONUNBUFFERED)
starts cold, as does a command that is not `<this python> <script>.py`: `eligible`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["PRELOAD", "WarmProcess", "WarmStarter", "eligible"]

log = logging.getLogger(__name__)

PRELOAD = ("numpy", "pandas", "sklearn.ensemble", "joblib")
SERVER = Path(__file__).with_name("warm_server.py")
# Variables a job may have of its own and still start warm: none of PRELOAD reads them at import.
_JOB_OWN = re.compile(r"^(SM_|AWS_|SAGEMAKER_|GREENLIGHT_|PYTHONUNBUFFERED$)")


def eligible(cmd: list[str], env: dict[str, str], server_env: dict[str, str]) -> bool:
    """Whether the job `cmd` with environment `env` may start from a server imported under `server_env`."""
    if len(cmd) < 2 or cmd[0] != sys.executable or not cmd[1].endswith(".py"):
        return False
    changed = {k for k in env.keys() | server_env.keys() if env.get(k) != server_env.get(k)}
    return all(_JOB_OWN.match(k) for k in changed)


class WarmStarter:
    """A warm job server of its own (one job at a time); `close()` it when the run is over."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD):
        self.preload = preload
        self._server: subprocess.Popen | None = None
        self._env: dict[str, str] = {}
        self._ready = False

    def start(self) -> None:
        """Launch the server if it is not running; returns at once (it imports in its own process).

        Raises: OSError (the process could not be started).
        """
        if self._server is not None:
            return
        self._env = dict(os.environ)
        self._server = subprocess.Popen([sys.executable, str(SERVER), *self.preload], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self._env)
        self._ready = False
        log.debug("warm job server (pid %d) importing %s", self._server.pid, ", ".join(self.preload))

    def launch(self, cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> WarmProcess | None:
        """Start `cmd` warm, its output appended to log_path; None when it must start cold (`eligible`, or
        the server cannot serve: its reason is logged)."""
        if self._server is None:
            return None
        if not eligible(cmd, env, self._env):
            log.info("starting %s cold: its command or environment differs from the warm server's", cmd[1:2])
            return None
        try:
            if not self._ready:
                answer = self._answer()
                if "ready" not in answer:
                    raise OSError(answer.get("error", f"unexpected answer {answer}"))
                self._ready = True
            request = {"argv": list(cmd[1:]), "env": dict(env), "cwd": str(cwd), "log": str(log_path)}
            self._server.stdin.write((json.dumps(request) + "\n").encode())
            self._server.stdin.flush()
            pid = self._answer()["pid"]
        except (OSError, ValueError, KeyError) as exc:
            log.info("starting %s cold: the warm server cannot serve (%s)", cmd[1:2], exc)
            self.close()
            return None
        return WarmProcess(self, pid)

    def close(self) -> None:
        """Stop the server at once (it holds nothing; a job it started is the runner's to wait for or stop)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.kill()
        server.wait()
        for stream in (server.stdin, server.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def _answer(self, timeout: float | None = None) -> dict:
        """The server's next answer. Raises: OSError (it ended), TimeoutError."""
        stream = self._server.stdout
        if timeout is not None and not select.select([stream], [], [], timeout)[0]:
            raise TimeoutError
        line = stream.readline()
        if not line:
            raise OSError(f"the warm job server ended (exit code {self._server.wait()})")
        return json.loads(line)


class WarmProcess:
    """A job started warm, with the part of Popen's interface the runner uses: wait, terminate, kill."""

    def __init__(self, starter: WarmStarter, pid: int):
        self._starter, self.pid = starter, pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """The exit code (negative: the signal that killed it). Raises: subprocess.TimeoutExpired, OSError
        (the server ended without reporting it)."""
        if self.returncode is None:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    self.returncode = int(self._starter._answer(left if left is not None else 0.5)["exit"])
                    break
                except TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout) from None
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass
