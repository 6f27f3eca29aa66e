"""`greenlight batch scheduler`: the local schedule (the AWS request, kept under GREENLIGHT_HOME) runs
its due jobs, each with its own job id (the TransformJobName of the substituted Input) and output folder.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from deploy.batch.aws_requests import ModelRef, schedule_request
from deploy.batch.config import BatchConfig
from deploy.batch.jobs import JobStore
from deploy.batch.local_schedule import disable_local_schedule, put_local_schedule, read_local_schedule
from deploy.batch.scheduler import run_due
from greenlight.cli import main
from tests.support.batch_models import GROUP, read_floats, register, sklearn_predict, trained_model, write_rows

BOUND_SECONDS = 60


@pytest.fixture
def world(tmp_path, monkeypatch):
    models = {1: trained_model(12, 0), 2: trained_model(14, 1)}
    home = tmp_path / "home"
    register(home, models[1], approve=True)
    register(home, models[2], approve=True)
    values = write_rows(tmp_path / "in" / "x.csv", 500, seed=21)
    monkeypatch.setenv("GREENLIGHT_HOME", str(home))
    monkeypatch.setattr("greenlight.cli.batch._stop_on_sigterm", lambda: None)
    return {"home": home, "models": models, "values": values, "input": tmp_path / "in", "output": tmp_path / "out"}


def put(world, version: int, schedule: str = "rate(1 minute)", now=None, **fields) -> dict:
    config = BatchConfig(input=str(world["input"]), output=str(world["output"]), schedule=schedule, **fields)
    request = schedule_request(config, ModelRef(GROUP, version, f"{GROUP}-v{version}"), local=True)
    return put_local_schedule(world["home"], request, now=now)


def local_parts(world):
    from greenlight.registry import LocalModelRegistry
    from greenlight.store import LocalArtifactStore

    home = world["home"]
    return {"registry": LocalModelRegistry(home), "store": LocalArtifactStore(home / "s3"),
            "cache_dir": home / "model-cache"}


def test_the_local_schedule_holds_the_aws_request_shape(world):
    stored = put(world, 2)
    aws = schedule_request(BatchConfig(input="s3://bucket-a/in/", output="s3://bucket-a/out/",
                                       role_arn="arn:aws:iam::123456789012:role/r"), ModelRef(GROUP, 2, f"{GROUP}-v2"))
    for key in ("Name", "ScheduleExpression", "ScheduleExpressionTimezone", "State", "FlexibleTimeWindow"):
        assert key in stored
    assert set(json.loads(stored["Target"]["Input"])) == set(json.loads(aws["Target"]["Input"]))
    assert stored["Target"]["Arn"] == aws["Target"]["Arn"]


def test_once_runs_what_is_due_with_its_own_job_id_and_output_folder(world, capsys):
    put(world, 2)  # a rate schedule fires as soon as it exists, as EventBridge Scheduler's does
    assert main(["batch", "scheduler", "--once"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"schedule greenlight-batch: starting job greenlight-[a-z0-9]{16} because rate\(1 minute\) "
                     r"\(UTC\) was due at ", err)
    assert "1 job(s) started" in err
    (record,) = JobStore(world["home"] / "batch" / "jobs").list()
    assert (record.status, record.model_version, record.rows) == ("Completed", 2, 500)
    assert record.schedule["name"] == "greenlight-batch" and record.job_id.endswith(record.schedule["execution_id"])
    out = world["output"] / record.job_id / "x.csv.out"
    assert np.array_equal(read_floats(out), sklearn_predict(world["models"][2], world["values"]))

    assert main(["batch", "scheduler", "--once"]) == 0  # the next run is a minute away
    err = capsys.readouterr().err
    assert "not running: its next run is at" in err and "0 job(s) started" in err


def test_cron_runs_at_its_time_disabled_never_and_a_missing_version_fails_that_run_only(world):
    created = datetime(2026, 11, 30, 1, 59, tzinfo=UTC)
    put(world, 1, "cron(0 2 * * ? *)", now=created)
    parts = local_parts(world)
    assert run_due(world["home"], now=created + timedelta(seconds=30), **parts) == []
    (record,) = run_due(world["home"], now=datetime(2026, 11, 30, 2, 0, 20, tzinfo=UTC), **parts)
    assert (record.status, record.model_version, record.schedule["scheduled_time"]) == (
        "Completed", 1, "2026-11-30T02:00:00Z")
    assert run_due(world["home"], now=datetime(2026, 11, 30, 2, 5, tzinfo=UTC), **parts) == []

    disable_local_schedule(world["home"], "greenlight-batch")
    assert run_due(world["home"], now=datetime(2026, 12, 1, 2, 0, 5, tzinfo=UTC), **parts) == []

    put(world, 9, "cron(0 2 * * ? *)", now=created)  # enabled again, naming a version that does not exist
    assert read_local_schedule(world["home"], "greenlight-batch")["State"] == "ENABLED"
    assert run_due(world["home"], now=datetime(2026, 12, 2, 2, 0, 5, tzinfo=UTC), **parts) == []
    failed = JobStore(world["home"] / "batch" / "jobs").list()[0]
    assert failed.status == "Failed" and failed.model_version == 9 and "could not start" in failed.failure_reason


def test_the_foreground_scheduler_stops_cleanly_on_sigterm(world):
    put(world, 1)
    env = {**os.environ, "GREENLIGHT_HOME": str(world["home"])}
    proc = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "batch", "scheduler", "--poll-seconds", "0.2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jobs = JobStore(world["home"] / "batch" / "jobs")
    try:
        deadline = time.monotonic() + BOUND_SECONDS
        while not any(r.status == "Completed" for r in jobs.list()):
            assert proc.poll() is None and time.monotonic() < deadline, "the scheduler did not run the due job"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=BOUND_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and "greenlight batch scheduler: stopped" in err
    assert [r.status for r in jobs.list()] == ["Completed"]
