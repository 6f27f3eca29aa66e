"""Drift monitoring end to end, locally, through the real CLI in separate processes (issue 25's "Must show").

GIVEN version 1 trained by `greenlight run`, approved, and `greenlight endpoint serve` answering,
WHEN 2,000 requests drawn from the bundled data (rows with small noise) are served, THEN
`greenlight monitor --json` flags no feature and exits 0; WHEN 2,000 more arrive with `bmi` shifted by
two standard deviations, THEN `greenlight monitor --json --since` covering only those flags `bmi` and no
other feature, exits 3, and `--report DIR` holds a PNG for `bmi`.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli_processes import greenlight, registered_url
from tests.support.drift_traffic import requests_from_the_bundled_data

GROUP = "greenlight-models"
BOUND_SECONDS = 120
GAP_SECONDS = 5.0  # between the two phases, so a --since window can hold the second one only


cli = greenlight


def serving_url(home: Path, proc: subprocess.Popen) -> str:
    return registered_url(home / "deployments" / GROUP / "endpoint.serving.json", proc, "endpoint serve",
                          BOUND_SECONDS)


def send(url: str, rows: np.ndarray) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for row in rows.tolist():
            conn.request("POST", "/invocations", body=",".join(map(repr, row)).encode(),
                         headers={"Content-Type": "text/csv"})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, body
    finally:
        conn.close()


@pytest.mark.slow
def test_monitor_finds_no_drift_in_like_traffic_and_only_bmi_once_it_shifts(tmp_path):
    home = tmp_path / "home"
    cli(home, "run")
    serve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "endpoint", "serve", "--port", "0",
                              "--poll-seconds", "0.2"], env=os.environ | {"GREENLIGHT_HOME": str(home)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = serving_url(home, serve)
        assert "endpoint: nothing -> v1" in cli(home, "models", "approve", "1").stdout
        # Phase 1: traffic like the training data
        send(url, requests_from_the_bundled_data(2000, seed=1))
        time.sleep(1.0)  # the capture writer writes every 0.2 s
        first = cli(home, "monitor", "--json")
        doc = json.loads(first.stdout)
        assert list(doc) == sorted(["version", "rows", "features", "prediction"])  # echo_json sorts the keys
        assert doc["version"] == 1
        assert doc["rows"] == 2000 + 5  # and the approval's 5 smoke-test rows, sent through this endpoint
        assert [f["name"] for f in doc["features"]] == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
        assert [f for f in doc["features"] if f["drift"]] == []
        assert all(set(f) == {"name", "psi", "drift"} and f["psi"] < 0.1 for f in doc["features"]), doc["features"]
        assert doc["prediction"]["drift"] is False
        # Phase 2, after a gap: bmi shifted by two standard deviations
        time.sleep(GAP_SECONDS)
        mark = time.time()
        time.sleep(GAP_SECONDS)
        send(url, requests_from_the_bundled_data(2000, seed=2, shift={"bmi": 2.0}))
        time.sleep(1.0)
        report = tmp_path / "drift-report"
        since = f"{math.floor(time.time() - mark)}s"  # starts after phase 1 even if the CLI takes GAP_SECONDS to start
        second = cli(home, "monitor", "--json", "--since", since, "--report", str(report), ok=(3,))
    finally:
        serve.terminate()
        serve.communicate(timeout=BOUND_SECONDS)
    doc = json.loads(second.stdout)
    assert doc["rows"] == 2000  # only the second phase
    assert [f["name"] for f in doc["features"] if f["drift"]] == ["bmi"]
    bmi = next(f for f in doc["features"] if f["name"] == "bmi")
    assert bmi["psi"] > 1.0
    png = report / "v1-bmi.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="v1-bmi.png"' in (report / "index.html").read_text()
    details = json.loads((report / "report.json").read_text())
    assert details["drift"] is True and details["versions"][0]["features"][2]["name"] == "bmi"
    # the table says the same in words
    table = cli(home, "monitor", "--since", "1h", ok=(3,)).stdout  # a window holding both phases
    assert "greenlight-models v1: 4,005 rows" in table and "DRIFT" in table
