"""Local batch jobs end to end: real models, real worker processes, predictions equal to scikit-learn's.

GIVEN two versions trained by src/train.py and registered in a local registry (v1 Approved, v2 newer
but pending), WHEN jobs run with each strategy, with and without JoinSource Input, over several files
(a sub-folder, an empty file, a last line without newline) and mini-batches small enough that rows
fall on both sides of payload limits, THEN every .out line equals scikit-learn's `predict` of its
input row, bit for bit; the CLI picks the version the approval deployed on the local batch target,
reports bad rows with file, line and reason, and writes nothing when a job fails.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from deploy.batch.config import MB, BatchStrategy
from deploy.batch.jobs import JobStore
from deploy.batch.runner import JobSpec, run_job
from deploy.batch.splitting import read_units
from greenlight.cli import main
from tests.support.batch_models import GROUP, read_floats, register, sklearn_predict, trained_model, write_rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A GREENLIGHT_HOME with v1 (Approved) and v2 (PendingManualApproval), and input folders."""
    root = tmp_path_factory.mktemp("batch-e2e")
    models = {1: trained_model(12, 0), 2: trained_model(14, 1)}
    home = root / "home"
    assert register(home, models[1], approve=True) == 1
    assert register(home, models[2], approve=False) == 2
    big, small = root / "in-big", root / "in-small"
    values = {
        "a.csv": write_rows(big / "a.csv", 12_000, seed=1),  # about 2.4 MB: three 1 MB mini-batches
        "sub/b.csv": write_rows(big / "sub" / "b.csv", 3_000, seed=2),
        "empty.csv": np.zeros((0, 10)),
    }
    (big / "empty.csv").write_bytes(b"")
    last = write_rows(big / "z.csv", 2, seed=3)
    (big / "z.csv").write_bytes((big / "z.csv").read_bytes().rstrip(b"\n"))  # no newline at the end
    values["z.csv"] = last
    small_values = {"x.csv": write_rows(small / "x.csv", 700, seed=4),
                    "deep/er/y.csv": write_rows(small / "deep" / "er" / "y.csv", 300, seed=5)}
    return {"home": home, "models": models, "big": (big, values), "small": (small, small_values)}


@pytest.fixture
def home(world, monkeypatch):
    monkeypatch.setenv("GREENLIGHT_HOME", str(world["home"]))
    monkeypatch.setattr("greenlight.cli.batch._stop_on_sigterm", lambda: None)  # in-process: keep pytest's handler
    return world["home"]


def model_dir(world, version: int):
    from deploy.batch.resolve import model_dir_for
    from greenlight.registry import LocalModelRegistry
    from greenlight.store import LocalArtifactStore

    home = world["home"]
    return model_dir_for(LocalModelRegistry(home), LocalArtifactStore(home / "s3"), GROUP, version,
                         home / "model-cache")


def assert_outputs_equal_sklearn(world, output, values, version: int, join: bool):
    reference = world["models"][version]
    produced = sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
    assert produced == sorted(f"{name}.out" for name in values)
    for name, rows in values.items():
        out = output / f"{name}.out"
        if len(rows) == 0:
            assert out.read_bytes() == b""
            continue
        assert np.array_equal(read_floats(out), sklearn_predict(reference, rows))  # bit for bit
        if join:
            lines = out.read_text().splitlines()
            inputs = [",".join(repr(v) for v in row) for row in rows.tolist()]
            assert [line.rsplit(",", 1)[0] for line in lines] == inputs
            assert np.array_equal(np.array([[float(v) for v in line.split(",")[:-1]] for line in lines]), rows)


@pytest.mark.parametrize("join", [False, True])
def test_multi_record_with_mini_batches_that_split_the_files_equals_scikit_learn(world, tmp_path, join):
    big, values = world["big"]
    with open(big / "a.csv", "rb") as fh:  # the 1 MB limit cuts a.csv into several mini-batches
        assert len(list(read_units(fh, MB, MB))) >= 3
    spec = JobSpec(input=big, output=tmp_path / "out", model_group=GROUP, model_version=1,
                   model_dir=model_dir(world, 1), strategy=BatchStrategy.MULTI_RECORD, max_payload_mb=1,
                   join_input=join, workers=2)
    record = run_job(spec, JobStore(tmp_path / "jobs"))
    assert (record.status, record.rows, record.bad_rows, record.files) == ("Completed", 15_002, 0, 4)
    assert_outputs_equal_sklearn(world, tmp_path / "out", values, 1, join)


@pytest.mark.parametrize("join", [False, True])
def test_single_record_equals_scikit_learn(world, tmp_path, join):
    small, values = world["small"]
    spec = JobSpec(input=small, output=tmp_path / "out", model_group=GROUP, model_version=2,
                   model_dir=model_dir(world, 2), strategy=BatchStrategy.SINGLE_RECORD, max_payload_mb=0,
                   join_input=join, workers=2)
    record = run_job(spec, JobStore(tmp_path / "jobs"))
    assert (record.status, record.rows, record.model_version) == ("Completed", 1_000, 2)
    assert_outputs_equal_sklearn(world, tmp_path / "out", values, 2, join)


def test_cli_uses_the_deployed_version_and_records_the_job(world, home, tmp_path, capsys, monkeypatch):
    small, values = world["small"]
    # nothing deployed yet: one clear error, no job
    assert main(["batch", "run", "--input", str(small), "--output", str(tmp_path / "out")]) == 2
    assert "approve a version (greenlight models approve N) or pass --model-version" in capsys.readouterr().err
    # the approval (v1; v2 is pending) deploys the local batch target: its schedule names v1
    monkeypatch.setenv("GREENLIGHT_ENDPOINT_ENABLED", "false")
    assert main(["deploy"]) == 0
    assert "batch: runs v1, the newest Approved version" in capsys.readouterr().out
    assert main(["batch", "run", "--input", str(small), "--output", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert ("using greenlight-models version 1: the version the local batch schedule greenlight-models-batch runs"
            in captured.err)
    assert "Completed: 1,000 rows from 2 file(s)" in captured.out
    assert_outputs_equal_sklearn(world, tmp_path / "out", values, 1, join=False)
    assert main(["batch", "jobs", "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)
    newest = jobs[0]
    assert (newest["status"], newest["model_version"], newest["rows"], newest["bad_rows"]) == ("Completed", 1, 1000, 0)
    assert newest["duration_seconds"] > 0 and newest["input"] == str(small)
    assert main(["batch", "jobs"]) == 0
    assert newest["job_id"] in capsys.readouterr().out


def test_a_bad_row_stops_the_job_naming_file_line_and_reason_and_nothing_is_written(world, home, tmp_path, capsys):
    small, _ = world["small"]
    data = tmp_path / "in"
    shutil.copytree(small, data)
    with open(data / "deep" / "er" / "y.csv", "a") as fh:
        fh.write("0.1,0.2,oops,0.1,0.1,0.1,0.1,0.1,0.1,0.1\n")  # line 301
    (data / "header.csv").write_text("age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1\n")
    out = tmp_path / "out"
    assert main(["batch", "run", "--input", str(data), "--output", str(out), "--model-version", "2"]) == 1
    err = capsys.readouterr().err
    assert "failed: deep/er/y.csv, line 301: column 2: 'oops' is not a number (send no header line)" in err
    assert list(out.rglob("*.out")) == [] and list(out.iterdir()) == []  # no output, no staging left behind

    assert main(["batch", "run", "--input", str(data), "--output", str(out), "--model-version", "2",
                 "--max-bad-rows", "2", "--join-input"]) == 0
    captured = capsys.readouterr()
    assert "Completed: 1,001 rows (2 bad row(s) skipped)" in captured.out
    assert "skipped deep/er/y.csv line 301: column 2: 'oops' is not a number" in captured.out
    assert "skipped header.csv line 1: column 0: 'age' is not a number" in captured.out
    assert (out / "header.csv.out").read_text() == "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,\n" + \
        "0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1," + \
        repr(float(sklearn_predict(world["models"][2], np.full((1, 10), 0.1))[0])) + "\n"
    record = JobStore(home / "batch" / "jobs").list()[0].to_dict()
    assert record["bad_row_lines"] == [
        {"file": "deep/er/y.csv", "line": 301, "reason": "column 2: 'oops' is not a number (send no header line)"},
        {"file": "header.csv", "line": 1, "reason": "column 0: 'age' is not a number (send no header line)"}]


@pytest.mark.parametrize("join", [False, True])
def test_a_skipped_row_keeps_its_line_so_output_line_k_answers_input_line_k(world, home, tmp_path, capsys, join):
    """Issue 18 item 3: 1,000 rows, a bad one at line 500, --max-bad-rows 1: 1,000 output lines, in place."""
    rows = np.random.default_rng(7).uniform(-0.12, 0.2, size=(1000, 10))
    lines = [",".join(repr(v) for v in row) for row in rows.tolist()]
    lines[499] = "0.1,0.2,oops,0.1,0.1,0.1,0.1,0.1,0.1,0.1"  # line 500
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    args = ["batch", "run", "--input", str(tmp_path / "in"), "--output", str(out), "--model-version", "1",
            "--max-bad-rows", "1", *(["--join-input"] if join else [])]
    assert main(args) == 0
    assert "skipped rows.csv line 500: column 2: 'oops' is not a number" in capsys.readouterr().out
    answers = (out / "rows.csv.out").read_text().split("\n")
    assert answers[-1] == "" and len(answers[:-1]) == 1000
    answers = answers[:-1]
    if join:
        assert [a.rsplit(",", 1)[0] for a in answers] == lines  # each input line, in its place
        answers = [a.rsplit(",", 1)[1] for a in answers]
    assert answers[499] == ""
    good = [i for i in range(1000) if i != 499]
    expected = sklearn_predict(world["models"][1], rows[good])
    assert np.array_equal(np.array([float(answers[i]) for i in good]), expected)  # bit for bit, line for line


@pytest.mark.parametrize("args, message", [
    (["--max-payload-mb", "101"], "--max-payload-mb: 101 is outside 0-100"),
    (["--max-payload-mb", "0"], "--max-payload-mb: 0 (no limit, HTTP chunked encoding) leaves a MultiRecord"),
    (["--batch-strategy", "AllAtOnce"], "--batch-strategy: Input should be 'MultiRecord' or 'SingleRecord'"),
    (["--model-version", "9"], "version 9"),
    (["--input", "/nonexistent/rows"], "--input /nonexistent/rows: /nonexistent/rows does not exist"),
])
def test_bad_arguments_are_one_line_and_start_nothing(world, home, tmp_path, capsys, args, message):
    small, _ = world["small"]
    code = main(["batch", "run", "--input", str(small), "--output", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_output_inside_the_input_is_refused(world, home, tmp_path, capsys):
    small, _ = world["small"]
    assert main(["batch", "run", "--input", str(small), "--output", str(small / "results")]) == 2
    assert "is inside the input" in capsys.readouterr().err
