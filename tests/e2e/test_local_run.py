"""The generated definition, executed locally end to end, and the ways a local run can fail."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenlight.data import default_dataset_csv
from greenlight.errors import DefinitionError, ExecutionFailed, ParameterError
from greenlight.registry import ApprovalStatus, LocalModelRegistry
from greenlight.store import LocalArtifactStore
from pipelines.config import PipelineConfig
from pipelines.local.executions import ExecutionStore
from pipelines.local.runner import LocalRunner

CONFIG = PipelineConfig.resolve(env={})
FAST = {"NEstimators": "20", "NJobs": "1"}


@pytest.fixture(scope="module")
def definition(tmp_path_factory) -> dict:
    """Built once: offline, the SDK's uploads land in a module-wide artifact store."""
    from pipelines.definition import build_definition
    from pipelines.sessions import offline_session

    store = LocalArtifactStore(tmp_path_factory.mktemp("uploads"))
    text = build_definition(CONFIG, offline_session(CONFIG, store.put_bytes))
    return {"definition": json.loads(text), "uploads": store.root}


@pytest.fixture
def local(definition, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(definition["uploads"], home / "s3")
    store = LocalArtifactStore(home / "s3")
    store.put_bytes(CONFIG.default_input_uri, default_dataset_csv())
    registry = LocalModelRegistry(home)
    runner = LocalRunner(store, registry, ExecutionStore(home / "executions"))
    return runner, copy.deepcopy(definition["definition"]), home


def _assert_valid_create_model_package(home, version: int) -> None:
    """The request the local RegisterModel step resolved, checked against botocore's CreateModelPackage shape."""
    import sqlite3

    import botocore.session
    from botocore.validate import ParamValidator

    with sqlite3.connect(home / "registry.sqlite3") as conn:
        (stored,) = conn.execute("SELECT request FROM model_packages WHERE version = ?", (version,)).fetchone()
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateModelPackage")
    report = ParamValidator().validate(json.loads(stored), shape.input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.slow
def test_generated_definition_runs_end_to_end_and_registers_its_metrics(local):
    runner, definition, home = local
    record = runner.run(definition, FAST)
    assert record.status == "Succeeded"
    assert [s.name for s in record.steps] == ["Preprocess", "Train", "Evaluate", "CheckRmse", "Register"]
    assert all(s.status == "Succeeded" for s in record.steps)
    version = runner.registry.get("greenlight-models", 1)
    assert version.status is ApprovalStatus.PENDING and record.registered["version"] == 1
    assert version.image.endswith("sagemaker-scikit-learn:1.9-0-cpu-py3")
    assert version.content_types == ("text/csv", "application/json")
    # The registered metrics are the evaluation step's output, byte for byte.
    metrics_uri = version.model_metrics["ModelQuality"]["Statistics"]["S3Uri"]
    assert f"/{record.execution_id}/Evaluate/evaluation/evaluation.json" in metrics_uri
    report = json.loads(runner.store.get_bytes(metrics_uri))
    rmse = report["regression_metrics"]["rmse"]["value"]
    assert float(version.customer_metadata["greenlight:rmse"]) == rmse
    assert version.customer_metadata["greenlight:pipeline-execution"] == record.execution_id
    # The drift baseline (issue 25): Evaluate's baseline.json of the training split, linked where the registry
    # keeps baselines, in a request botocore's CreateModelPackage shape accepts
    baseline_uri = version.drift_check_baselines["ModelDataQuality"]["Statistics"]["S3Uri"]
    assert baseline_uri == metrics_uri.replace("/evaluation.json", "/baseline.json")
    baseline = json.loads(runner.store.get_bytes(baseline_uri))
    assert (baseline["format"], baseline["source"], baseline["rows"]) == ("greenlight-baseline/1", "training split", 308)
    assert [f["name"] for f in baseline["features"]] == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    _assert_valid_create_model_package(home, version.version)
    # The model artifact is a SageMaker-style model.tar.gz with the serving code inside.
    import tarfile

    with tarfile.open(runner.store.path_for(version.model_data_url)) as tar:
        names = set(tar.getnames())
        metadata = json.loads(tar.extractfile("metadata.json").read())
    assert {"model.joblib", "metadata.json", "code/inference.py", "code/capture.py"} <= names
    assert baseline["model"]["sha256"] == metadata["model_sha256"]  # how the monitor ties unlabelled capture to v1
    # A second run registers version 2 and the outbox has one creation event per version.
    runner.run(definition, FAST)
    assert [v.version for v in runner.registry.list_versions("greenlight-models")] == [2, 1]
    assert [e["detail"]["ModelPackageVersion"] for e in runner.registry.pending_events()] == [1, 2]


@pytest.mark.slow
def test_condition_routes_to_the_fail_step_with_rmse_and_threshold(local):
    runner, definition, _ = local
    with pytest.raises(ExecutionFailed) as failed:
        runner.run(definition, FAST | {"RmseThreshold": "1.5"})
    message = str(failed.value)
    assert "RmseTooHigh" in message and "is above the threshold 1.5" in message
    record = runner.executions.list()[0]
    assert record.status == "Failed" and [s.name for s in record.steps][-2:] == ["CheckRmse", "RmseTooHigh"]
    assert record.steps[-2].outcome == "False"
    with pytest.raises(Exception, match="none yet|no model package group"):
        runner.registry.list_versions("greenlight-models")


@pytest.mark.slow
def test_failing_script_fails_the_execution_and_later_steps_do_not_run(local):
    runner, definition, _ = local
    with pytest.raises(ExecutionFailed) as failed:
        runner.run(definition, FAST | {"TargetColumn": "price"})
    message = str(failed.value)
    assert "step Preprocess failed with exit code 1" in message
    assert "missing target column 'price'" in message, "the last lines of the step's log"
    record = runner.executions.list()[0]
    assert [s.name for s in record.steps] == ["Preprocess"] and record.status == "Failed"
    assert Path(record.steps[0].log_path).read_text().count("missing target column") == 1


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["Steps"].append({"Name": "Tune", "Type": "Tuning", "Arguments": {}}),
     "step Tune: step type 'Tuning' is not supported locally"),
    (lambda d: d["Steps"][0]["Arguments"]["AppSpecification"].__setitem__(
        "ImageUri", "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:latest"),
     "step Preprocess: image '123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:latest' is not supported"),
    (lambda d: d["Steps"][0]["Arguments"]["AppSpecification"].__setitem__(
        "ContainerArguments", [{"Std:Concat": ["a", "b"]}]),
     "unsupported expression 'Std:Concat'"),
    (lambda d: d["Steps"][1]["Arguments"]["HyperParameters"].__setitem__("x", {"Get": "Parameters.Nope"}),
     "reference to unknown parameter 'Nope'"),
])
def test_unsupported_constructs_are_refused_before_anything_runs(local, mutate, expected):
    runner, definition, home = local
    mutate(definition)
    with pytest.raises(DefinitionError, match=expected.replace("(", r"\(").replace("[", r"\[")):
        runner.run(definition, FAST)
    assert runner.executions.list() == [], "no execution may start"


def test_unknown_or_ill_typed_parameters_are_refused(local):
    runner, definition, _ = local
    with pytest.raises(ParameterError, match="unknown pipeline parameter"):
        runner.run(definition, {"Trees": "5"})
    with pytest.raises(ParameterError, match="NEstimators is Integer, but 'lots' is not"):
        runner.run(definition, {"NEstimators": "lots"})
    assert runner.executions.list() == []


def _run_cli(home: Path, *args: str, **kw) -> subprocess.Popen:
    env = os.environ | {"GREENLIGHT_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "greenlight.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_sigterm_marks_the_execution_stopped_and_a_killed_run_reads_as_failed(tmp_path):
    from pipelines.local.executions import ExecutionStore

    store = ExecutionStore(tmp_path / "executions")

    def wait_for_step(name: str, proc: subprocess.Popen) -> None:
        # A bound, not a timing: on a loaded machine the SDK's import, the build and Preprocess took over
        # a minute before Train started. A run that ends first fails at once, with its stderr.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            records = store.list()
            if records and any(s.name == name for s in records[0].steps):
                return
            if proc.poll() is not None:
                pytest.fail(f"greenlight run ended (exit {proc.returncode}) before {name}: {proc.stderr.read()}")
            time.sleep(0.1)
        pytest.fail(f"step {name} never started")

    proc = _run_cli(tmp_path, "run", "--param", "NEstimators=3000", "--param", "NJobs=1")
    wait_for_step("Train", proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    record = store.list()[0]
    assert record.status == "Stopped" and record.steps[-1].status == "Stopped"

    proc = _run_cli(tmp_path, "run", "--param", "NEstimators=3000", "--param", "NJobs=1")
    for _ in range(600):
        records = store.list()
        if len(records) == 2 and records[0].steps and records[0].steps[-1].name == "Train":
            break
        time.sleep(0.1)
    proc.kill()  # SIGKILL: no chance to record anything
    proc.communicate(timeout=60)
    newest = store.list()[0]
    assert newest.status == "Failed" and "ended without finishing it" in newest.failure_reason


def test_cli_bad_input_is_one_line_and_changes_nothing(tmp_path, capsys):
    from greenlight.cli import main

    assert main(["run", "--data", str(tmp_path / "missing.csv")]) == 2
    assert "--data" in capsys.readouterr().err and not (Path(os.environ["GREENLIGHT_HOME"]) / "executions").exists()
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert main(["run", "--data", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read it as UTF-8" in err
    (tmp_path / "empty.csv").write_text("")
    assert main(["run", "--data", str(tmp_path / "empty.csv")]) == 2
    assert "empty file" in capsys.readouterr().err
    assert main(["run", "--param", "MaxDepth"]) == 2
    assert "not KEY=VALUE" in capsys.readouterr().err
    assert main(["executions", "show", "nope"]) == 2
    assert "no local execution 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_registry_refusal_fails_the_execution_instead_of_stopping_it(local, monkeypatch):
    runner, definition, _ = local
    # A bad approval status no longer reaches the registry: the parameter table refuses it before any step.
    with pytest.raises(ParameterError, match="ModelApprovalStatus=Maybe is out of range"):
        runner.run(definition, FAST | {"ModelApprovalStatus": "Maybe"})
    assert runner.executions.list() == []

    def refuse(request):
        raise ParameterError("invalid ModelApprovalStatus 'Maybe' (unknown approval status)")

    monkeypatch.setattr(runner.registry, "create_model_package", refuse)  # a registry that still refuses
    with pytest.raises(ExecutionFailed, match="ModelApprovalStatus|approval status"):
        runner.run(definition, FAST)
    record = runner.executions.list()[0]
    assert record.status == "Failed" and record.steps[-1].name == "Register"
    assert record.steps[-1].status == "Failed"
