"""The shipped code type-checks (mypy, `mypy.ini`), and the check bites.

Two passes, as the code is laid out: greenlight/, deploy/ and pipelines/ as packages (the files
mypy.ini names), then src/ from inside the folder, since the container scripts import each other by
bare name (`import payload`). The boto3 clients are typed by the boto3-stubs the test extra installs.
The cache (.mypy_cache/, git-ignored; one folder per test, so two xdist workers never write the same
one) keeps a rerun to about a second.

The last test plants the fault the type checker is here for, a None passed where the deploy protocol
says SmokeTest, and expects mypy to name it; a configuration that could not catch it fails this suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "mypy.ini"
CACHE = ROOT / ".mypy_cache"

PLANTED = '''
from deploy.engine.protocol import DeployTarget, Staged


def probe_without_smoke_data(target: DeployTarget, staged: Staged) -> str:
    return target.probe(staged, None)
'''


def mypy(*args: str, cwd: Path = ROOT, cache: Path = CACHE) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "MYPY_FORCE_COLOR": "0"}
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--cache-dir", str(cache),
                           "--no-pretty", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_greenlight_deploy_and_pipelines_type_check():
    result = mypy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found"), result.stdout


def test_the_container_code_type_checks():
    scripts = sorted(p.name for p in (ROOT / "src").glob("*.py") if p.name != "__init__.py")
    result = mypy("--explicit-package-bases", *scripts, cwd=ROOT / "src", cache=CACHE / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"Success: no issues found in {len(scripts)} source files"), result.stdout


def test_none_where_the_protocol_says_smoketest_fails(tmp_path):
    planted = tmp_path / "planted_smoke_none.py"
    planted.write_text(PLANTED, encoding="utf-8")
    result = mypy(str(planted), cache=CACHE / "planted")
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Argument 2 to "probe" of "DeployTarget" has incompatible type "None"; expected "SmokeTest"' \
        in result.stdout, result.stdout
