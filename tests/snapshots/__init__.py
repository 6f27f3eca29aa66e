"""Committed snapshots of what Greenlight generates, and the one command that rebuilds them.

`pipeline-definition.json` is `greenlight pipeline definition` built offline (no AWS variables,
no credentials, every socket refused by tests/support/socket_guard). tests/e2e/test_definition.py
compares a fresh build with it byte for byte; after an intended change, rebuild it with

    make definition-snapshot        # = .venv/bin/python -m tests.snapshots

and commit the file, so the change to the definition shows in the diff under review.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["DEFINITION", "REGENERATE", "build_definition", "definition_diff", "offline_env"]

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "tests" / "support" / "socket_guard"
DEFINITION = Path(__file__).resolve().with_name("pipeline-definition.json")
REGENERATE = "make definition-snapshot"


def offline_env(tmp_path: Path) -> dict[str, str]:
    """This environment minus AWS/SageMaker settings, with the socket guard and an empty HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_")) and k != "ARTIFACT_BUCKET"}
    env.update(PYTHONPATH=str(GUARD), GREENLIGHT_SOCKET_LOG=str(tmp_path / "sockets.log"),
               HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    return env


def build_definition(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m greenlight.cli pipeline definition ARGS` run offline in tmp_path; text output."""
    return subprocess.run([sys.executable, "-m", "greenlight.cli", "pipeline", "definition", *args],
                          cwd=tmp_path, env=offline_env(tmp_path), capture_output=True, text=True, timeout=300)


def definition_diff(built: str, limit: int = 60) -> str:
    """A unified diff from the committed snapshot to `built`, cut after `limit` lines."""
    committed = DEFINITION.read_bytes().decode("utf-8") if DEFINITION.exists() else ""  # keeps \r\n visible
    lines = list(difflib.unified_diff(committed.splitlines(keepends=True), built.splitlines(keepends=True),
                                      f"{DEFINITION.relative_to(ROOT)} (committed)", "pipeline definition (built now)",
                                      n=2))
    shown = "".join(line if line.endswith("\n") else line + "\n" for line in lines[:limit])
    if committed != built and committed.replace("\r\n", "\n") == built.replace("\r\n", "\n"):
        shown = "(they differ only in line endings: \\r\\n against \\n)\n" + shown
    return shown + (f"... and {len(lines) - limit} more diff lines\n" if len(lines) > limit else "")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="greenlight-definition-") as tmp:
        built = build_definition(Path(tmp))
    if built.returncode != 0:
        print(f"definition-snapshot: the build failed, {DEFINITION.name} is unchanged:\n{built.stderr}",
              file=sys.stderr)
        return 1
    if DEFINITION.exists() and DEFINITION.read_bytes() == built.stdout.encode("utf-8"):
        print(f"definition-snapshot: {DEFINITION.relative_to(ROOT)} is up to date")
        return 0
    diff = definition_diff(built.stdout)
    DEFINITION.write_bytes(built.stdout.encode("utf-8"))
    print(f"definition-snapshot: rewrote {DEFINITION.relative_to(ROOT)}; commit it with the change that caused:\n{diff}")
    return 0
