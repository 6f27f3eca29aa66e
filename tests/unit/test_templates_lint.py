"""cfn-lint passes on both CloudFormation templates (what `make lint` also runs), and it would catch a
broken one (a planted error is reported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.templates import TEMPLATES


def lint(path: Path) -> list[str]:
    from cfnlint.api import ManualArgs, lint_file

    return [f"{m.rule.id} {m.message} ({path.name}:{m.linenumber})"
            for m in lint_file(path, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_cfn_lint_is_clean(name):
    assert lint(TEMPLATES[name]) == []


def test_cfn_lint_reports_a_planted_error(tmp_path):
    broken = tmp_path / "template.yaml"
    text = TEMPLATES["template.yaml"].read_text(encoding="utf-8")
    broken.write_text(text.replace("Runtime: python3.12", "Runtime: python2.7"), encoding="utf-8")
    problems = lint(broken)
    assert any("python2.7" in p for p in problems), problems
