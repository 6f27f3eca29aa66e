"""The layering rules of ARCHITECTURE.md hold (import-linter, `.importlinter`), and the check bites.

The second test copies the packages, plants one violation per contract (each inside a function, since
imports inside functions count too) and expects every contract to break; so a contract that could
never fail (a typo in a module name, a rule that matches nothing) fails this suite instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"
PACKAGES = ("greenlight", "pipelines", "deploy", "src")
LINT = Path(sys.executable).parent / "lint-imports"

# contract id -> (file to plant the violation in, the import planted)
VIOLATIONS = {
    "src-stands-alone": ("src/payload.py", "import greenlight.errors"),
    "core-below-everything": ("greenlight/store.py", "import greenlight.cli"),
    "no-commands-below-the-cli": ("pipelines/aws.py", "import greenlight.cli.models"),
    "clients-are-injected": ("deploy/endpoint/client.py", "import greenlight.workspace"),
    "pure-decisions-no-aws": ("greenlight/cost/model.py", "import boto3"),
    "handler-path-small": ("greenlight/registry/model.py", "import pandas"),
    "deploy-is-lean": ("deploy/batch/scheduler.py", "import pandas"),
    "monitor-path-small": ("greenlight/monitor/stats.py", "import numpy"),
}


def lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd), "NO_COLOR": "1"}
    return subprocess.run([str(LINT), "--config", str(cwd / ".importlinter"), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def contract_ids() -> set[str]:
    return {line.split(":")[-1].strip(" ]") for line in CONFIG.read_text().splitlines()
            if line.startswith("[importlinter:contract:")}


def test_the_layering_contracts_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contract_ids())} kept, 0 broken." in result.stdout


def test_every_contract_breaks_on_a_planted_violation(tmp_path):
    assert set(VIOLATIONS) == contract_ids(), "give every contract a planted violation"
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    for relative, statement in VIOLATIONS.values():
        with open(tmp_path / relative, "a", encoding="utf-8") as fh:
            fh.write(f"\n\ndef _planted_violation():\n    {statement}\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert f"Contracts: 0 kept, {len(VIOLATIONS)} broken." in result.stdout, result.stdout


def test_every_code_directory_is_a_package():
    """A folder of modules without __init__.py is invisible to import-linter and to setup.py's
    find_packages (so missing from a non-editable install)."""
    missing = [str(d.relative_to(ROOT)) for package in PACKAGES for d in [ROOT / package, *(ROOT / package).rglob("*")]
               if d.is_dir() and "__pycache__" not in d.parts and any(d.glob("*.py"))
               and not (d / "__init__.py").exists()]
    assert missing == []


def test_no_package_hides_imports_behind_lazy_re_exports():
    """A module-level __getattr__ that imports on demand (the old `_EXPORTS` tables) hides the import from
    import-linter: `from deploy.batch import run_due` in the handler passed every contract while the direct
    import broke one. Packages import nothing lazily; callers import the submodule."""
    import ast

    hiding = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(isinstance(node, ast.FunctionDef) and node.name == "__getattr__" for node in tree.body):
                hiding.append(str(path.relative_to(ROOT)))
    assert hiding == []
