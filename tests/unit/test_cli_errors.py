"""Every command, given bad arguments or a hostile environment, prints one line and exits non-zero.

The table must name every command of the Typer app (a test walks the app), so a new command
without a bad-argument case fails here. Each row: argv, the words the one line must contain, the
exit code (2 a bad flag or value, 1 a fault, 0 a warning that lets the command go on), and an
optional set-up that prepares the environment (GREENLIGHT_HOME a file, a read-only or full
filesystem, a registry with a group) and returns the variables to set. `{tmp}` in argv is the
test's tmp_path. Never "internal error", never a traceback. Also: an unexpected exception (a bug)
is one line naming the file its traceback went to, and `--debug` prints the traceback instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import typer

from greenlight.cli import app, main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


Setup = Callable[[Path, contextlib.ExitStack], dict[str, str]]


@dataclass(frozen=True)
class Case:
    argv: list[str]
    words: str  # what the one line must contain
    exit_code: int
    setup: Setup | None = None  # (tmp_path, exit stack) -> environment variables to set


def _register(home: Path, group: str = "greenlight-models") -> None:
    """Version 1 of `group` in the local registry under home (what the registry needs, no model files)."""
    from greenlight.registry.local import LocalModelRegistry

    LocalModelRegistry(home).create_model_package({
        "ModelPackageGroupName": group,
        "InferenceSpecification": {"Containers": [{"Image": "sagemaker-scikit-learn:1.9-0-cpu-py3",
                                                   "ModelDataUrl": "s3://b/model.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}})


def home_is_a_file(tmp: Path, stack) -> dict[str, str]:
    (tmp / "home-file").write_text("not a directory")
    return {"GREENLIGHT_HOME": str(tmp / "home-file")}


def home_below_a_file(tmp: Path, stack) -> dict[str, str]:
    (tmp / "home-file").write_text("not a directory")
    return {"GREENLIGHT_HOME": str(tmp / "home-file" / "home")}


def registered(tmp: Path, stack) -> dict[str, str]:
    _register(tmp / "home")
    return {"GREENLIGHT_HOME": str(tmp / "home")}


def staged(tmp: Path, stack) -> dict[str, str]:
    """Stages staging (approval) and production (promotion) from the environment, the home registered."""
    _register(tmp / "home")
    return {"GREENLIGHT_HOME": str(tmp / "home"), "GREENLIGHT_STAGES": "staging,production",
            "GREENLIGHT_STAGES_STAGING_GATE": "approval", "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion"}


def read_only_home(tmp: Path, stack) -> dict[str, str]:
    from tests.support.disks import read_only, tmpfs

    disk = stack.enter_context(tmpfs(tmp / "disk", "8m"))
    _register(disk / "home")
    stack.enter_context(read_only(disk))
    return {"GREENLIGHT_HOME": str(disk / "home")}


def batch_input(tmp: Path) -> None:
    (tmp / "in").mkdir(exist_ok=True)
    (tmp / "in" / "rows.csv").write_text("1,2,3\n")


def output_file(tmp: Path, stack) -> dict[str, str]:
    batch_input(tmp)
    (tmp / "out-file").write_text("keep me")
    return {}


def read_only_output(tmp: Path, stack) -> dict[str, str]:
    from tests.support.disks import read_only, tmpfs

    batch_input(tmp)
    disk = stack.enter_context(tmpfs(tmp / "disk", "8m"))
    stack.enter_context(read_only(disk))
    return {}


def full_output(tmp: Path, stack) -> dict[str, str]:
    from tests.support.disks import fill, tmpfs

    batch_input(tmp)
    fill(stack.enter_context(tmpfs(tmp / "disk", "8m")))
    return {}


def occupied(tmp: Path, stack) -> dict[str, str]:
    (tmp / "occupied").mkdir()
    (tmp / "occupied" / "registry.sqlite3").write_text("someone's data")
    return {}


CASES = [
    Case(["run", "--param", "Nope=1"], "unknown pipeline parameter 'Nope'", 2),
    Case(["run", "--param", "NEstimators=many"], "parameter NEstimators is Integer, but 'many' is not", 2),
    Case(["run", "--param", "InputDataUrl=s3://nope/x"], "InputDataUrl s3://nope/x has no objects", 2),
    Case(["run", "--param", "NEstimators"], "--param 'NEstimators' is not KEY=VALUE", 2),
    Case(["run", "--data", "/no/such/file.csv"], "--data /no/such/file.csv: no such file or directory", 2),
    # pipeline parameters, range-checked from one table before Preprocess (pipelines/parameters.py)
    Case(["run", "--param", "NEstimators=0"], "NEstimators=0 is out of range: it takes 1 to 5,000 trees", 2),
    Case(["run", "--param", "NEstimators=100000000000000000000"], "NEstimators=100000000000000000000 is out of", 2),
    Case(["run", "--param", "NEstimators=1e20"], "parameter NEstimators is Integer, but '1e20' is not", 2),
    Case(["run", "--param", "MaxDepth=0"], "MaxDepth=0 is out of range: it takes None or a depth from 1", 2),
    Case(["run", "--param", "MinSamplesLeaf=0"], "MinSamplesLeaf=0 is out of range: it takes 1 or more", 2),
    Case(["run", "--param", "RandomState=-1"], "RandomState=-1 is out of range: it takes a seed from 0", 2),
    Case(["run", "--param", "MaxFeatures=1.5"], "MaxFeatures=1.5 is out of range", 2),
    Case(["run", "--param", "ModelApprovalStatus=Foo"],
         "ModelApprovalStatus=Foo is out of range: it takes PendingManualApproval, Approved, Rejected", 2),
    Case(["run", "--param", "ModelPackageGroupName=bad_name!"], "ModelPackageGroupName=bad_name! is out of range", 2),
    Case(["executions", "list", "--bogus"], "No such option: --bogus", 2),
    Case(["executions", "show", "no-such-execution"], "no-such-execution", 2),
    Case(["pipeline", "definition", "--tag", "team"], "--tag 'team' is not KEY=VALUE", 2),
    Case(["pipeline", "definition", "--model-package-group", "bad_name!"],
         "ModelPackageGroupName=bad_name! is out of range", 2),
    Case(["pipeline", "upsert"], "missing --role-arn / SAGEMAKER_PIPELINE_ROLE_ARN", 2),
    Case(["pipeline", "upsert", "--role-arn", "arn:aws:iam::1:role/r", "--bucket", "b", "--model-package-group",
          "bad_name!"], "ModelPackageGroupName=bad_name! is out of range", 2),
    Case(["pipeline", "start", "--param", "Nope=1"], "unknown pipeline parameter 'Nope'", 2),
    Case(["pipeline", "start", "--param", "NEstimators=0"], "NEstimators=0 is out of range", 2),
    Case(["pipeline", "start", "--timeout", "0"], "--timeout", 2),
    Case(["cost", "--requests-per-day", "-5"], "requests", 2),
    Case(["cost", "--requests-per-day", "10", "--duration-ms", "fast"], "fast", 2),
    Case(["endpoint", "serve", "--idle-seconds", "0"], "must be positive", 2),
    Case(["endpoint", "serve", "--idle-seconds", "nan"], "--idle-seconds nan: must be positive", 2),
    Case(["endpoint", "serve", "--port", "-1"], "Invalid value for '--port': Input should be greater than or equal "
                                                "to 0", 2),
    Case(["endpoint", "serve", "--port", "70000"], "Invalid value for '--port': Input should be less than or equal "
                                                   "to 65535", 2),
    Case(["endpoint", "serve", "--model", "/no/such/model"], "no model at /no/such/model", 2),
    Case(["lambda", "serve", "--idle-seconds", "0"], "--idle-seconds 0.0: must be positive", 2),
    Case(["lambda", "serve", "--poll-seconds", "nan"], "--poll-seconds nan: must be positive", 2),
    Case(["lambda", "serve", "--poll-seconds", "inf"], "--poll-seconds inf: must be positive (a finite number", 2),
    Case(["lambda", "serve", "--port", "70000"], "Invalid value for '--port': Input should be less than or equal to "
                                                 "65535", 2),
    Case(["lambda", "serve", "--group", "bad_group!"], "group = 'bad_group!' (the command line): must be", 2),
    Case(["invoke"], "pass exactly one of --body TEXT or --file F", 2),
    Case(["invoke", "--body", "1,2", "--endpoint", "http://127.0.0.1:9"], "cannot reach the endpoint", 1),
    Case(["invoke", "--body", "1,2", "--endpoint", "notaurl"], "--endpoint 'notaurl' is not a URL: expected", 2),
    Case(["invoke", "--body", "1,2", "--endpoint", "http://[::1"], "is not a URL: Invalid IPv6 URL", 2),
    Case(["invoke", "--body", "1,2", "--endpoint", "http://127.0.0.1:70000"], "is not a URL: Port out of range", 2),
    Case(["invoke", "--body", "1,2", "--endpoint", "http://bücher.example/x y"], "no spaces, control characters", 2),
    Case(["invoke", "--body", "1,2", "--content-type", "text/csv\r\nX-Evil: 1"],
         "--content-type 'text/csv\\r\\nX-Evil: 1': a header value holds no line breaks", 2),
    Case(["invoke", "--body", "1,2", "--accept", "application/json\n"], "--accept", 2),
    Case(["models", "list", "--status", "approved"], "unknown approval status 'approved'", 2),
    Case(["models", "list"], "GREENLIGHT_HOME", 2, home_is_a_file),
    Case(["models", "list"], "lies below the file", 2, home_below_a_file),
    Case(["models", "list"], "is mounted read-only (GREENLIGHT_HOME", 0, read_only_home),
    Case(["models", "show", "9"], "none yet", 2),
    Case(["models", "approve", "latest"], "VERSION must be a version number", 2),
    Case(["models", "approve", "1"], "is mounted read-only while writing the model registry", 1, read_only_home),
    Case(["models", "reject", "1", "--target", "gcp"], "unknown --target 'gcp'", 2),
    Case(["models", "reject", "1", "--stage", "qa"], "no stage 'qa' (stages: default; add [stages.<name>]", 2),
    Case(["promote", "1", "--stage", "production"], "no stage 'production' (stages: default", 2),
    Case(["promote", "latest", "--stage", "production"], "no stage 'production'", 2),
    Case(["endpoint", "serve", "--stage", "qa"], "no stage 'qa'", 2),
    Case(["lambda", "serve", "--stage", "qa"], "no stage 'qa'", 2),
    Case(["invoke", "--body", "1,2", "--stage", "qa"], "no stage 'qa'", 2),
    Case(["deploy", "--config", "/no/such.toml"], "--config /no/such.toml: no such file", 2),
    Case(["deploy", "--group", "not_a_valid_name!"], "group = 'not_a_valid_name!' (the command line): must be", 2),
    Case(["deploy", "--group", "greenlight-modles"],
         "no such model package group 'greenlight-modles'; known: greenlight-models", 0, registered),
    Case(["status", "--json", "--target", "moon"], "unknown --target 'moon'", 2),
    Case(["status", "--group", "greenlight-modles"],
         "no such model package group 'greenlight-modles'; known: greenlight-models", 0, registered),
    Case(["status"], "GREENLIGHT_HOME", 2, home_is_a_file),
    Case(["batch", "run", "--output", "out"], "Missing option '--input'", 2),
    Case(["batch", "run", "--input", "/no/such/dir", "--output", "out"], "/no/such/dir", 2),
    Case(["batch", "run", "--input", "in", "--output", "out", "--max-payload-mb", "101"], "101", 2),
    Case(["batch", "run", "--input", "{tmp}/in", "--output", "{tmp}/out-file"], "out-file is a file, not a folder",
         2, output_file),
    Case(["batch", "run", "--input", "{tmp}/in", "--output", "/dev/null"],
         "/dev/null is a device or other special file, not a folder", 2, output_file),
    Case(["batch", "run", "--input", "{tmp}/in", "--output", "{tmp}/out-file/sub"],
         "out-file, above it, is a file, not a folder", 2, output_file),
    Case(["batch", "run", "--input", "{tmp}/in", "--output", "{tmp}/disk/out"], "is mounted read-only; nothing was run",
         1, read_only_output),
    Case(["batch", "run", "--input", "{tmp}/in", "--output", "{tmp}/disk/out"], "no space left on", 1, full_output),
    Case(["batch", "jobs", "--bogus"], "No such option: --bogus", 2),
    Case(["history", "--at", "yesterday"], "--at 'yesterday' is not a time: give ISO 8601", 2),
    Case(["history", "--since", "2026-13-01"], "--since '2026-13-01' is not a time", 2),
    Case(["history", "--at", "2h", "--since", "1d"], "--at answers for one instant; it does not combine with", 2),
    Case(["history", "--mode", "gcp"], "unknown --mode 'gcp'", 2),
    Case(["demo", "--home"], "Option '--home' requires an argument", 2),
    Case(["demo", "--home", "{tmp}/occupied"], "is not empty and was not created by the demo", 2, occupied),
    Case(["batch", "scheduler", "--poll-seconds", "0"], "--poll-seconds", 2),
    Case(["stack", "deploy", "--parameter", "AlarmTopicArn"], "--parameter 'AlarmTopicArn' is not KEY=VALUE", 2),
    Case(["stack", "package"], "missing --bucket / ARTIFACT_BUCKET", 2),
    Case(["stack", "delete", "--timeout", "0"], "--timeout", 2),
    Case(["stack", "project", "--poll-seconds", "-1"], "--poll-seconds", 2),
    Case(["monitor", "--since", "yesterday"], "bad --since 'yesterday': give a duration such as", 2),
    Case(["monitor", "--since", "2h"], "no capture records of greenlight-models since", 2),
    Case(["monitor", "--serving", "kiosk"], "unknown serving target(s) kiosk", 2),
    Case(["monitor", "--stage", "qa"], "no stage 'qa' (stages: default", 2),
    # a stage's traffic is read from its own capture directory (greenlight.api.monitor)
    Case(["monitor", "--stage", "production", "--since", "2h"], "capture/greenlight-models-production", 2, staged),
    Case(["monitor", "--psi", "-1"], "--psi=-1.0 must be a number above 0 and at most 10", 2),
]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    names = set()
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group: typer vendors its own click, so not a click.Group
            names |= _commands(command, prefix + (name,))
        else:
            names.add(prefix + (name,))
    return names


def test_the_table_covers_every_command():
    commands = _commands(typer.main.get_command(app))
    covered = {tuple(case.argv[:len(command)]) for case in CASES for command in commands
               if tuple(case.argv[:len(command)]) == command}
    assert commands - covered == set(), "add a bad-argument case for these commands"


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c.argv) + (f" [{c.setup.__name__}]" if c.setup else "")
                                             for c in CASES])
def test_bad_arguments_and_hostile_environments_are_one_line(capsys, monkeypatch, tmp_path, case):
    with contextlib.ExitStack() as stack:
        for name, value in (case.setup(tmp_path, stack) if case.setup else {}).items():
            monkeypatch.setenv(name, value)
        code, _, err = run(capsys, *[arg.format(tmp=tmp_path) for arg in case.argv])
    assert code == case.exit_code, err
    assert "Traceback" not in err and "internal error" not in err, err
    prefix = "greenlight: warning: " if case.exit_code == 0 else "greenlight: error: "
    assert err.startswith(prefix) and err.count("\n") == 1, err
    assert case.words in err, err


def test_the_refused_demo_home_keeps_its_file(capsys, tmp_path):
    """issue 18 must-show: demo --home on a directory holding a file exits non-zero and the file is still there."""
    occupied(tmp_path, None)
    code, _, err = run(capsys, "demo", "--home", str(tmp_path / "occupied"))
    assert code == 2 and err.count("\n") == 1, err
    assert (tmp_path / "occupied" / "registry.sqlite3").read_text() == "someone's data"
    assert sorted(p.name for p in (tmp_path / "occupied").iterdir()) == ["registry.sqlite3"]


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left on"),
    (errno.EROFS, "is mounted read-only"),
    (errno.EACCES, "permission denied while accessing"),
    (errno.EIO, "input/output error on"),
])
def test_the_disk_refusing_is_one_line_naming_the_path(capsys, monkeypatch, tmp_path, code, words):
    from greenlight.registry.local import LocalModelRegistry

    path = tmp_path / "greenlight-home" / "some" / "file"

    def refuse(self, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(LocalModelRegistry, "list_versions", refuse)
    exit_code, _, err = run(capsys, "models", "list")
    assert exit_code == 1 and err.count("\n") == 1 and "internal error" not in err, err
    assert err.startswith("greenlight: error: ") and words in err and str(path) in err, err


def test_a_descriptor_write_without_a_path_names_the_home(capsys, monkeypatch, tmp_path):
    from greenlight.registry.local import LocalModelRegistry

    def refuse(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # what a flush at close raises: no filename

    monkeypatch.setattr(LocalModelRegistry, "list_versions", refuse)
    code, _, err = run(capsys, "models", "list")
    assert code == 1 and err.count("\n") == 1, err
    assert f"while writing a file under {tmp_path / 'greenlight-home'}" in err, err


def test_other_os_errors_stay_bugs_with_a_traceback_file(capsys, monkeypatch):
    from greenlight.registry.local import LocalModelRegistry

    def broken(self, *args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/somewhere/we/assumed")

    monkeypatch.setattr(LocalModelRegistry, "list_versions", broken)
    code, _, err = run(capsys, "models", "list")
    assert code == 1 and err.count("\n") == 1
    assert "internal error (a bug in Greenlight): FileNotFoundError" in err and "traceback in " in err


def test_no_region_for_aws_is_one_line(capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    code, _, err = run(capsys, "pipeline", "start")
    assert code == 2 and err.count("\n") == 1
    assert "no AWS region: pass --region, set AWS_REGION" in err


def test_a_bug_is_one_line_naming_its_traceback_file(capsys, monkeypatch, tmp_path):
    from greenlight.registry import LocalModelRegistry

    def broken(self, *args, **kwargs):
        raise RuntimeError("something inside broke\nacross two lines")

    monkeypatch.setattr(LocalModelRegistry, "list_versions", broken)
    code, _, err = run(capsys, "models", "list")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "internal error (a bug in Greenlight): RuntimeError: something inside broke across two lines" in err
    path = err.split("traceback in ", 1)[1].split(";", 1)[0]
    report = open(path, encoding="utf-8").read()
    assert "Traceback" in report and "RuntimeError: something inside broke" in report
    assert path.startswith(str(tmp_path))  # under GREENLIGHT_HOME/logs (tests/conftest.py)


def test_debug_prints_the_traceback(capsys, monkeypatch):
    from greenlight.registry import LocalModelRegistry

    def broken(self, *args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(LocalModelRegistry, "list_versions", broken)
    code, _, err = run(capsys, "--debug", "models", "list")
    assert code == 1 and "Traceback (most recent call last)" in err and "RuntimeError: something inside broke" in err
