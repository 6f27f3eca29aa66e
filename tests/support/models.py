"""Model versions trained, evaluated and packed by the real container scripts, for tests.

`train_models(work)` runs src/preprocess.py, src/train.py (two versions that predict differently) and
src/evaluate.py (which records each version's smoke-test rows in smoke.json and its drift baseline of the
training split in baseline.json) on the diabetes data,
and packs each model directory as model.tar.gz, as SageMaker does.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
VERSIONS = (("a", 10, 0), ("b", 12, 1))


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def pack(model_dir: Path, archive: Path) -> Path:
    """model_dir as a model.tar.gz (entries relative to the directory, as SageMaker packs /opt/ml/model)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return archive


def train_models(work: Path) -> dict[str, Path]:
    """{'a': dir, 'b': dir, 'a_tar': model.tar.gz, 'b_tar': ..., 'a_smoke': smoke.json, 'b_smoke': ...,
    'a_baseline': baseline.json, 'b_baseline': ...}."""
    from greenlight.data import write_default_dataset

    write_default_dataset(work / "data")
    _run(str(SRC / "preprocess.py"), "--input-dir", "data", "--output-dir", "splits", cwd=work)
    found: dict[str, Path] = {"test_split": work / "splits" / "test"}
    for name, trees, seed in VERSIONS:
        _run(str(SRC / "train.py"), "--train", "splits/train", "--model-dir", name, "--n_estimators", str(trees),
             "--random_state", str(seed), "--n_jobs", "1", cwd=work)
        found[name] = work / name
        found[f"{name}_tar"] = pack(work / name, work / f"{name}-packed" / "model.tar.gz")
        _run(str(SRC / "evaluate.py"), "--model-dir", f"{name}-packed", "--test-dir", "splits/test",
             "--train-dir", "splits/train", "--output-dir", f"{name}-evaluation", cwd=work)
        found[f"{name}_smoke"] = work / f"{name}-evaluation" / "smoke.json"
        found[f"{name}_baseline"] = work / f"{name}-evaluation" / "baseline.json"
    return found
