"""The drift monitor with [stages] locally (docs/decisions/0057): each stage's targets write under its key,
GREENLIGHT_HOME/capture/<group>-<stage>/, so `greenlight monitor` reads every stage's directory (or --stage's) and
attributes the records to the stage, as on AWS (tests/contract/test_monitor_stages_aws.py)."""

from __future__ import annotations

import json

import pytest

from greenlight.monitor.local import capture_dir
from tests.contract.test_monitor_aws import BASELINE_URI, GROUP, register_request
from tests.support.drift_traffic import capture_lines, requests_from_the_bundled_data

STAGES = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
          "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion"}


@pytest.fixture
def home(tmp_path, models, monkeypatch):
    """Version 1 in the local registry with its baseline in the local store; staging served like traffic (300 rows
    on its endpoint, 200 on its Lambda), production bmi shifted (400 on its endpoint); the group's own directory,
    which no stage uses, holds shifted decoys."""
    from greenlight.workspace import Workspace

    root = tmp_path / "home"
    monkeypatch.setenv("GREENLIGHT_HOME", str(root))
    ws = Workspace.open("local", home=root)
    ws.registry.create_model_package(register_request("sklearn:1.9-0", "s3://b/a/model.tar.gz"))
    baseline = ws.store.path_for(BASELINE_URI)
    baseline.parent.mkdir(parents=True, exist_ok=True)
    baseline.write_bytes(models["a_baseline"].read_bytes())

    def serve(key: str, target: str, n: int, seed: int, shift=None) -> None:
        found = capture_lines(models["a"], requests_from_the_bundled_data(n, seed, shift), tmp_path, target=target)
        path = capture_dir(root, key) / f"{target}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(found) + "\n")

    serve(f"{GROUP}-staging", "endpoint", 300, 101)
    serve(f"{GROUP}-staging", "lambda", 200, 102)
    serve(f"{GROUP}-production", "endpoint", 400, 103, {"bmi": 2.0})
    serve(GROUP, "endpoint", 500, 104, {"age": 3.0})
    return root


def monitor(capsys, *args: str) -> tuple[int, dict]:
    from greenlight.cli import main

    code = main(["monitor", "--json", "--since", "30m", *args])
    return code, json.loads(capsys.readouterr().out)


def test_every_stage_or_one_is_read_and_attributed(home, monkeypatch, capsys):
    for name, value in STAGES.items():
        monkeypatch.setenv(name, value)
    code, doc = monitor(capsys, "--stage", "staging")
    assert (code, doc["rows"], doc["stages"]) == (0, 500, ["staging"])
    code, doc = monitor(capsys, "--stage", "production")
    assert (code, doc["rows"], doc["stages"]) == (3, 400, ["production"])
    assert [f["name"] for f in doc["features"] if f["drift"]] == ["bmi"]
    _, doc = monitor(capsys)
    assert (doc["rows"], doc["stages"]) == (900, ["production", "staging"])
    assert "age" not in [f["name"] for f in doc["features"] if f["drift"]]


def test_without_stages_the_groups_directory_alone_as_before(home, capsys):
    code, doc = monitor(capsys)
    assert (code, doc["rows"]) == (3, 500) and "stages" not in doc
    assert [f["name"] for f in doc["features"] if f["drift"]] == ["age"]
