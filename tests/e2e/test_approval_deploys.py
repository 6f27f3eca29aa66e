"""Approval drives deployment, end to end, through the real CLI in separate processes.

GIVEN two versions trained by `greenlight run` and `greenlight endpoint serve` running, WHEN version
1 is approved, then version 2, then version 2 is rejected, with clients sending requests all along,
THEN no request fails and the clients see X-Greenlight-Model-Version 1, then 2, then 1 again.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.cli_processes import greenlight, registered_url
from tests.support.endpoints import ROW

GROUP = "greenlight-models"
BOUND_SECONDS = 120


cli = greenlight


def _serving_url(home: Path, proc: subprocess.Popen) -> str:
    return registered_url(home / "deployments" / GROUP / "endpoint.serving.json", proc, "endpoint serve")


def _clients(url: str, count: int, stop: threading.Event, seen: list[list[str]], failures: list[str]):
    host, port = url.removeprefix("http://").split(":")

    def loop(log: list[str]) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while not stop.is_set():
            try:
                conn.request("POST", "/invocations", body=ROW.encode(), headers={"Content-Type": "text/csv"})
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    failures.append(f"{response.status}: {body[:200]!r}")
                else:
                    version = response.getheader("X-Greenlight-Model-Version")
                    if not log or log[-1] != version:
                        log.append(version)
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.close()

    threads = []
    for _ in range(count):
        seen.append([])
        thread = threading.Thread(target=loop, args=(seen[-1],), daemon=True)
        thread.start()
        threads.append(thread)
    return threads


@pytest.mark.slow
def test_approve_1_then_2_then_reject_2_under_load_fails_no_request(tmp_path):
    home = tmp_path / "home"
    cli(home, "run")
    cli(home, "run", "--param", "NEstimators=40", "--param", "RandomState=7")
    serve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "endpoint", "serve", "--port", "0",
                              "--poll-seconds", "0.2"], env=os.environ | {"GREENLIGHT_HOME": str(home)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = _serving_url(home, serve)
        out = cli(home, "models", "approve", "1").stdout
        assert "endpoint: nothing -> v1 (smoke test passed at" in out, out
        stop, seen, failures = threading.Event(), [], []
        threads = _clients(url, 4, stop, seen, failures)
        time.sleep(0.5)
        out = cli(home, "models", "approve", "2").stdout
        assert "endpoint: v1 -> v2" in out, out
        time.sleep(0.5)
        out = cli(home, "models", "reject", "2").stdout
        assert "endpoint: v2 -> v1" in out, out
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=BOUND_SECONDS)
    finally:
        serve.terminate()
        serve.communicate(timeout=BOUND_SECONDS)
    assert failures == []
    expected = [f"{GROUP}/1", f"{GROUP}/2", f"{GROUP}/1"]
    assert all(log == expected for log in seen), seen
    status = json.loads(cli(home, "status", "--json").stdout)
    assert (status["desired"], status["targets"][0]["running"], status["targets"][0]["drift"]) == (1, 1, False)
