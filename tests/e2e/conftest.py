"""Fixtures for the e2e tests: model versions trained by the real scripts."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Two model versions trained by the real scripts on the diabetes data, and A as model.tar.gz."""
    from greenlight.data import write_default_dataset

    work = tmp_path_factory.mktemp("endpoint-models")
    write_default_dataset(work / "data")
    _run(str(SRC / "preprocess.py"), "--input-dir", "data", "--output-dir", "splits", cwd=work)
    dirs = {}
    for name, trees, seed in (("a", 10, 0), ("b", 12, 1)):
        _run(str(SRC / "train.py"), "--train", "splits/train", "--model-dir", name, "--n_estimators", str(trees),
             "--random_state", str(seed), "--n_jobs", "1", cwd=work)
        dirs[name] = work / name
    archive = work / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(dirs["a"].rglob("*")):
            tar.add(path, arcname=str(path.relative_to(dirs["a"])), recursive=False)
    dirs["a_tar"] = archive
    return dirs
