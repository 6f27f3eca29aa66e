"""Issue 21's "Must show", verbatim, through the real CLI in subprocesses.

GIVEN greenlight.toml with `[stages.staging] gate = "approval"` and `[stages.production] gate = "promotion"`
in the working directory and three versions trained by `greenlight run`, WHEN versions are approved,
promoted and rejected in production, THEN each state, read from `greenlight status --json`
(`stages[*].targets[*].running`), is the one the issue names; a version that never ran in staging is
refused with one line and exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = '[stages.staging]\ngate = "approval"\n\n[stages.production]\ngate = "promotion"\n'


def greenlight(work: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    env = os.environ | {"GREENLIGHT_HOME": str(work / "home"),
                        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    proc = subprocess.run([sys.executable, "-m", "greenlight.cli", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == code, f"greenlight {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n" \
                                    f"{proc.stderr}"
    return proc


def running(work: Path) -> dict[str, set[int | None]]:
    """{stage: the set of versions its targets run}, from `greenlight status --json`."""
    doc = json.loads(greenlight(work, "status", "--json").stdout)
    assert [s["stage"] for s in doc["stages"]] == ["staging", "production"]
    assert all(len(s["targets"]) == 3 for s in doc["stages"])  # endpoint, Lambda, batch in each stage
    return {s["stage"]: {t["running"] for t in s["targets"]} for s in doc["stages"]}


@pytest.mark.slow
def test_staging_on_approval_production_on_promotion(tmp_path, monkeypatch):
    (tmp_path / "greenlight.toml").write_text(CONFIG)
    for _ in range(3):
        greenlight(tmp_path, "run")
    assert running(tmp_path) == {"staging": {None}, "production": {None}}

    greenlight(tmp_path, "models", "approve", "1")
    assert running(tmp_path) == {"staging": {1}, "production": {None}}

    greenlight(tmp_path, "promote", "1", "--stage", "production")
    assert running(tmp_path) == {"staging": {1}, "production": {1}}

    greenlight(tmp_path, "models", "approve", "2")
    assert running(tmp_path) == {"staging": {2}, "production": {1}}

    greenlight(tmp_path, "promote", "2", "--stage", "production")
    assert running(tmp_path) == {"staging": {2}, "production": {2}}

    greenlight(tmp_path, "models", "reject", "2", "--stage", "production")
    assert running(tmp_path) == {"staging": {2}, "production": {1}}

    refused = greenlight(tmp_path, "promote", "3", "--stage", "production", code=2)
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("greenlight: error: cannot promote")
    assert "v3" in refused.stderr and "not Approved" in refused.stderr
    assert running(tmp_path) == {"staging": {2}, "production": {1}}

    # an Approved version kept out of staging (rejected there) has not passed it either
    greenlight(tmp_path, "models", "reject", "3", "--stage", "staging")
    greenlight(tmp_path, "models", "approve", "3")
    assert running(tmp_path) == {"staging": {2}, "production": {1}}
    refused = greenlight(tmp_path, "promote", "3", "--stage", "production", code=2)
    assert refused.stderr.count("\n") == 1 and "has not passed stage staging" in refused.stderr

    # rejecting the approval itself removes the version from every stage
    greenlight(tmp_path, "models", "reject", "1")
    # production keeps serving v1 online (when_nothing_approved = keep, warned); its batch schedule stops
    assert running(tmp_path) == {"staging": {2}, "production": {1, None}}
    doc = json.loads(greenlight(tmp_path, "status", "--json").stdout)
    production = next(s for s in doc["stages"] if s["stage"] == "production")
    assert production["desired"] is None and all(t["warning"] for t in production["targets"]
                                                   if t["kind"] != "batch")

    # the deployment history keeps each stage apart: production's endpoint went 1, 2, back to 1, and stayed
    events = json.loads(greenlight(tmp_path, "history", "--stage", "production", "--target", "endpoint",
                                   "--json").stdout)["events"]
    assert [(e["to_version"], e["trigger"]) for e in reversed(events) if e["ok"]] == [
        (1, "promotion"), (2, "promotion"), (1, "rejection")]  # promote 1, promote 2, reject 2 --stage production
    assert {e["stage"] for e in events} == {"production"}

    # each stage is served locally on its own: `endpoint serve --stage`, `lambda serve --stage`, `invoke --stage`
    serve_stage_and_invoke(tmp_path, monkeypatch)


def serve_stage_and_invoke(work: Path, monkeypatch) -> None:
    import time

    from greenlight import api
    from tests.support.endpoints import ROW

    env = os.environ | {"GREENLIGHT_HOME": str(work / "home"),
                        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    server = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "endpoint", "serve", "--stage", "production",
                               "--port", "0"], cwd=work, env=env, stderr=subprocess.PIPE, text=True)
    try:
        record = work / "home" / "deployments" / "greenlight-models-production" / "endpoint.serving.json"
        deadline = time.monotonic() + 120
        while not record.exists():
            assert server.poll() is None and time.monotonic() < deadline, "endpoint serve --stage never registered"
            time.sleep(0.05)
        answer = json.loads(greenlight(work, "invoke", "--stage", "production", "--body", ROW).stdout)
        assert len(answer["predictions"]) == 1
        monkeypatch.chdir(work)  # greenlight.toml is read from the working directory
        ws = api.workspace("local", home=work / "home")
        assert api.predict(ws, ROW, stage="production").version == "greenlight-models-production/1"
        assert answer["predictions"] == list(api.predict(ws, ROW, stage="production").values)
        with api.serve_endpoint(ws, stage="staging"), api.serve_lambda(ws, stage="staging"):
            assert api.predict(ws, ROW, stage="staging").version == "greenlight-models-staging/2"
            assert api.predict(ws, ROW, "lambda", stage="staging").version == "greenlight-models-staging/2"
    finally:
        server.terminate()
        server.wait(timeout=60)
