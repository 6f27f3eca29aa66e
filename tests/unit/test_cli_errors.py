"""Every command, given bad arguments, prints one line naming the problem and exits non-zero.

The table must name every command of the Typer app (a test walks the app), so a new command
without a bad-argument case fails here. Also: an unexpected exception (a bug) is one line naming
the file its traceback went to, and `--debug` prints the traceback instead.
"""

from __future__ import annotations

import click
import pytest
import typer

from greenlight.cli import app, main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# (argv, words the one-line message must contain, the exit code)
CASES = [
    (["run", "--param", "Nope=1"], "unknown pipeline parameter 'Nope'", 2),
    (["run", "--param", "NEstimators=many"], "parameter NEstimators is Integer, but 'many' is not", 2),
    (["run", "--param", "InputDataUrl=s3://nope/x"], "InputDataUrl s3://nope/x has no objects", 2),
    (["run", "--param", "NEstimators"], "--param 'NEstimators' is not KEY=VALUE", 2),
    (["run", "--data", "/no/such/file.csv"], "--data /no/such/file.csv: no such file or directory", 2),
    (["executions", "list", "--bogus"], "No such option: --bogus", 2),
    (["executions", "show", "no-such-execution"], "no-such-execution", 2),
    (["pipeline", "definition", "--tag", "team"], "--tag 'team' is not KEY=VALUE", 2),
    (["pipeline", "upsert"], "missing --role-arn / SAGEMAKER_PIPELINE_ROLE_ARN", 2),
    (["pipeline", "start", "--param", "Nope=1"], "unknown pipeline parameter 'Nope'", 2),
    (["pipeline", "start", "--timeout", "0"], "--timeout", 2),
    (["cost", "--requests-per-day", "-5"], "requests", 2),
    (["cost", "--requests-per-day", "10", "--duration-ms", "fast"], "fast", 2),
    (["endpoint", "serve", "--idle-seconds", "0"], "must be positive", 2),
    (["endpoint", "serve", "--model", "/no/such/model"], "no model at /no/such/model", 2),
    (["lambda", "serve", "--idle-seconds", "0"], "--idle-seconds and --poll-seconds must be positive", 2),
    (["lambda", "serve", "--group", "bad_group!"], "group = 'bad_group!' (the command line): must be", 2),
    (["invoke"], "pass exactly one of --body TEXT or --file F", 2),
    (["invoke", "--body", "1,2", "--endpoint", "http://127.0.0.1:9"], "cannot reach the endpoint", 1),
    (["models", "list", "--status", "approved"], "unknown approval status 'approved'", 2),
    (["models", "show", "9"], "none yet", 2),
    (["models", "approve", "latest"], "VERSION must be a version number", 2),
    (["models", "reject", "1", "--target", "gcp"], "unknown --target 'gcp'", 2),
    (["deploy", "--config", "/no/such.toml"], "--config /no/such.toml: no such file", 2),
    (["deploy", "--group", "not_a_valid_name!"], "group = 'not_a_valid_name!' (the command line): must be", 2),
    (["status", "--json", "--target", "moon"], "unknown --target 'moon'", 2),
    (["batch", "run", "--output", "out"], "Missing option '--input'", 2),
    (["batch", "run", "--input", "/no/such/dir", "--output", "out"], "/no/such/dir", 2),
    (["batch", "run", "--input", "in", "--output", "out", "--max-payload-mb", "101"], "101", 2),
    (["batch", "jobs", "--bogus"], "No such option: --bogus", 2),
    (["demo", "--home"], "Option '--home' requires an argument", 2),
    (["batch", "scheduler", "--poll-seconds", "0"], "--poll-seconds", 2),
    (["stack", "deploy", "--parameter", "AlarmTopicArn"], "--parameter 'AlarmTopicArn' is not KEY=VALUE", 2),
    (["stack", "package"], "missing --bucket / ARTIFACT_BUCKET", 2),
    (["stack", "delete", "--timeout", "0"], "--timeout", 2),
    (["monitor", "--since", "yesterday"], "bad --since 'yesterday': give a duration such as", 2),
    (["monitor", "--since", "2h"], "no capture records of greenlight-models since", 2),
    (["monitor", "--serving", "kiosk"], "unknown serving target(s) kiosk", 2),
    (["monitor", "--psi", "-1"], "--psi=-1.0 must be a number above 0 and at most 10", 2),
]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    names = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names |= _commands(command, prefix + (name,))
        else:
            names.add(prefix + (name,))
    return names


def test_the_table_covers_every_command():
    commands = _commands(typer.main.get_command(app))
    covered = {tuple(argv[:len(command)]) for argv, _, _ in CASES for command in commands
               if tuple(argv[:len(command)]) == command}
    assert commands - covered == set(), "add a bad-argument case for these commands"


@pytest.mark.parametrize("argv, words, exit_code", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_arguments_are_one_line_and_a_non_zero_exit(capsys, argv, words, exit_code):
    code, _, err = run(capsys, *argv)
    assert code == exit_code, err
    assert "Traceback" not in err
    assert err.startswith("greenlight: error: ") and err.count("\n") == 1, err
    assert words in err


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
