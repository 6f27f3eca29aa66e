"""buildspec.yml: the phases CodeBuild runs, and every greenlight command in it exists with its flags."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load() -> dict:
    return yaml.safe_load((ROOT / "buildspec.yml").read_text())


def commands(spec: dict) -> list[str]:
    return [c for phase in spec["phases"].values() for c in phase.get("commands", [])]


def test_phases_install_lint_test_then_upsert_start_and_package():
    spec = load()
    assert str(spec["version"]) == "0.2"
    assert list(spec["phases"]) == ["install", "pre_build", "build"]
    flat = commands(spec)
    order = [next(i for i, c in enumerate(flat) if needle in c)
             for needle in ("make venv", "make lint", "make test ", "make test-slow", "pipeline upsert", "pipeline start",
                            "stack package")]
    assert order == sorted(order)
    # deploy/project.yaml's deploy actions read this build's artifact as their TemplateConfiguration
    assert spec["artifacts"]["files"] == ["stack-config.json"]
    assert any("--output stack-config.json" in c for c in flat)
    assert "StackConfig::stack-config.json" in (ROOT / "deploy" / "project.yaml").read_text()
    report = spec["reports"]["greenlight-tests"]
    assert report["file-format"] == "JUNITXML" and report["files"] == ["junit.xml", "junit-slow.xml"]
    assert any("make test " in c and "--junitxml=reports/junit.xml" in c for c in flat)
    assert any("make test-slow" in c and "--junitxml=reports/junit-slow.xml" in c for c in flat)


def test_every_greenlight_command_and_flag_exists():
    import typer.main

    from greenlight.cli import app

    root = typer.main.get_command(app)
    calls = [shlex.split(c) for c in commands(load()) if "greenlight " in c]
    assert calls, "buildspec calls greenlight"
    for argv in calls:
        argv = argv[argv.index(next(a for a in argv if a.endswith("greenlight"))) + 1:]
        command, rest = root, list(argv)
        while rest and hasattr(command, "commands") and rest[0] in command.commands:
            command = command.commands[rest.pop(0)]
        assert not hasattr(command, "commands"), f"{argv} does not name a command"
        flags = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for arg in rest:
            if arg.startswith("--"):
                assert arg.split("=")[0] in flags, f"{' '.join(argv)}: {arg} is not an option of {command.name}"
        # And the whole line parses (make_context raises a usage error otherwise).
        command.make_context(command.name, [a.replace("$", "") for a in rest], resilient_parsing=False)


def test_makefile_targets_the_buildspec_uses_exist():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("venv", "lint", "test"):
        assert f"\n{target}:" in makefile or f"\n{target}: " in makefile
