"""Under CI=true a skip fails the run; elsewhere it stays a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_pytest(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    test = tmp_path / "test_needs_component.py"
    test.write_text("import pytest\n\ndef test_needs_docker_registry():\n"
                    "    pytest.skip('docker-registry is not installed')\n")
    env = os.environ | {"CI": ci, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.support.ci_policy", "-c", os.devnull,
                           "--rootdir", str(tmp_path), str(test)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_skip_fails_under_ci(tmp_path):
    proc = run_pytest(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout
    assert "1 failed" in proc.stdout and "skipped under CI=true" in proc.stdout


def test_skip_is_a_skip_outside_ci(tmp_path):
    proc = run_pytest(tmp_path, "")
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout


def test_ci_runs_the_tests_make_test_leaves_out():
    """`make test` deselects the slow tests and `make test-slow` selects exactly them; .ci/run runs both."""
    recipes: dict[str, str] = {}
    target = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line and not line[0].isspace() and ":" in line and not line.startswith("#"):
            target = line.split(":")[0].strip()
        elif line.startswith("\t") and target:
            recipes[target] = recipes.get(target, "") + line
    assert '-m "not slow"' in recipes["test"] and "pytest" in recipes["test"]
    assert "-m slow" in recipes["test-slow"] and "pytest" in recipes["test-slow"]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip().startswith("make")]
    assert ci == ["make test || status=$?", "make test-slow || status=$?"], ci
