"""Real models for the batch tests: trained by src/train.py on the diabetes data, registered locally.

`train_model(work, trees, seed)` runs the real preprocess and train scripts (as the endpoint tests
do); `register(home, model_dir, approve=...)` puts its model.tar.gz in a local artifact store and
registers it in the local registry of that GREENLIGHT_HOME; `write_rows(path, rows, seed)` writes
headerless CSV rows with full float64 precision (what pandas exports).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
GROUP = "greenlight-models"


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def train_model(work: Path, trees: int = 20, seed: int = 0, name: str = "model") -> Path:
    """A model directory (the forest files, model.joblib, metadata.json, code/) written by src/train.py."""
    from greenlight.data import write_default_dataset

    work.mkdir(parents=True, exist_ok=True)
    if not (work / "splits").is_dir():
        write_default_dataset(work / "data")
        _run(str(SRC / "preprocess.py"), "--input-dir", "data", "--output-dir", "splits", cwd=work)
    _run(str(SRC / "train.py"), "--train", "splits/train", "--model-dir", name, "--n_estimators", str(trees),
         "--random_state", str(seed), "--n_jobs", "1", cwd=work)
    return work / name


_TRAINED: dict[tuple[int, int], Path] = {}


def trained_model(trees: int, seed: int) -> Path:
    """train_model, once per test process for each (trees, seed): the batch test modules share them."""
    import atexit
    import shutil
    import tempfile

    key = (trees, seed)
    if key not in _TRAINED:
        if not _TRAINED:
            work = Path(tempfile.mkdtemp(prefix="greenlight-batch-models-"))
            atexit.register(shutil.rmtree, work, True)
            _TRAINED[(-1, -1)] = work
        _TRAINED[key] = train_model(_TRAINED[(-1, -1)], trees=trees, seed=seed, name=f"t{trees}-s{seed}")
    return _TRAINED[key]


def tar_bytes(model_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return buf.getvalue()


def register(home: Path, model_dir: Path, *, approve: bool, group: str = GROUP) -> int:
    """Register model_dir's archive in the local registry under `home`, with smoke-test data (five rows and
    scikit-learn's predictions for them, linked as evaluate.py links them); its version number."""
    from deploy.engine.smoke import SMOKE_KEY, SmokeTest
    from greenlight.registry import ApprovalStatus, LocalModelRegistry
    from greenlight.store import LocalArtifactStore

    registry, store = LocalModelRegistry(home), LocalArtifactStore(home / "s3")
    uri = f"s3://greenlight-local/batch-tests/{model_dir.name}/model.tar.gz"
    store.put_bytes(uri, tar_bytes(model_dir))
    rows = np.random.default_rng(99).uniform(-0.12, 0.2, size=(5, 10))
    smoke = SmokeTest("".join(",".join(repr(v) for v in row) + "\n" for row in rows.tolist()),
                      tuple(float(p) for p in sklearn_predict(model_dir, rows)))
    smoke_uri = uri.replace("model.tar.gz", "smoke.json")
    store.put_bytes(smoke_uri, smoke.to_json().encode())
    version = registry.create_model_package({
        "ModelPackageGroupName": group,
        "InferenceSpecification": {
            "Containers": [{"Image": "sagemaker-scikit-learn:1.9-0-cpu-py3", "ModelDataUrl": uri}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
        "CustomerMetadataProperties": {SMOKE_KEY: smoke_uri},
    }).version
    if approve:
        registry.update_status(group, version, ApprovalStatus.APPROVED)
    return version


def write_rows(path: Path, rows: int, seed: int) -> np.ndarray:
    """Headerless CSV of `rows` x 10 features (diabetes-like range), each value's shortest repr."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(-0.12, 0.2, size=(rows, 10))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(repr(v) for v in row) + "\n" for row in values.tolist()), encoding="utf-8")
    return values


def sklearn_predict(model_dir: Path, rows: np.ndarray) -> np.ndarray:
    """scikit-learn's own predict over the rows (the reference every prediction must equal)."""
    import joblib

    return joblib.load(model_dir / "model.joblib").predict(rows)


def read_floats(path: Path, column: int = -1) -> np.ndarray:
    """The floats in one column of a .out file, parsed exactly (float() of the text)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return np.array([float(line.split(",")[column]) for line in lines], dtype=np.float64)
