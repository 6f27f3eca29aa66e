"""Evaluate step: score the trained model on the test split and write evaluation.json.

Runs as `python3 evaluate.py` in the SageMaker scikit-learn processing container. Input: the
training job's model.tar.gz under --model-dir and test.csv under --test-dir. Output:
`evaluation.json` in SageMaker's model-quality layout (`regression_metrics.<name>.value`), which
the pipeline's Condition step reads through a PropertyFile.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tarfile
import tempfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

# The container root: "/" on SageMaker; Greenlight's local runner points it at a sandbox.
CONTAINER_ROOT = os.environ.get("GREENLIGHT_CONTAINER_ROOT", "/")
DEFAULT_MODEL = os.path.join(CONTAINER_ROOT, "opt/ml/processing/model")
DEFAULT_TEST = os.path.join(CONTAINER_ROOT, "opt/ml/processing/test")
DEFAULT_OUTPUT = os.path.join(CONTAINER_ROOT, "opt/ml/processing/evaluation")


class EvaluationError(Exception):
    """The model or the test data cannot be evaluated."""


def unpack_model(model_dir: Path, into: Path) -> Path:
    """Return a directory holding model.joblib: model_dir itself, or model.tar.gz unpacked."""
    if (model_dir / "model.joblib").exists():
        return model_dir
    archive = model_dir / "model.tar.gz"
    if not archive.exists():
        raise EvaluationError(f"no model.tar.gz or model.joblib in {model_dir}")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def load_model(directory: Path):
    metadata = json.loads((directory / "metadata.json").read_text(encoding="utf-8"))
    model_path = directory / metadata["model_file"]
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if digest != metadata["model_sha256"]:
        raise EvaluationError(f"{model_path.name} sha256 {digest} does not match metadata {metadata['model_sha256']}")
    return joblib.load(model_path), metadata


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict[str, float]]:
    err = y_true - y_pred
    mse = float(np.mean(err**2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else 0.0
    values = {
        "mse": (mse, float(np.std(err**2))),
        "rmse": (math.sqrt(mse), float(np.std(np.abs(err)))),
        "mae": (float(np.mean(np.abs(err))), float(np.std(np.abs(err)))),
        "r2": (r2, 0.0),
    }
    return {name: {"value": v, "standard_deviation": sd} for name, (v, sd) in values.items()}


def evaluate(model_dir: Path, test_dir: Path) -> dict:
    files = sorted(test_dir.glob("*.csv")) if test_dir.is_dir() else [test_dir]
    if not files:
        raise EvaluationError(f"no test .csv under {test_dir}")
    test = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    with tempfile.TemporaryDirectory() as tmp:
        model, metadata = load_model(unpack_model(model_dir, Path(tmp)))
    features, target = metadata["feature_names"], metadata["target"]
    missing = [c for c in [target, *features] if c not in test.columns]
    if missing:
        raise EvaluationError(f"test data lacks columns {missing}")
    y_pred = model.predict(test[features].to_numpy(dtype="float64"))
    metrics = regression_metrics(test[target].to_numpy(dtype="float64"), y_pred)
    if not all(math.isfinite(m["value"]) for m in metrics.values()):
        raise EvaluationError(f"non-finite metrics: {metrics}")
    return {"regression_metrics": metrics, "test_rows": int(len(test))}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default=DEFAULT_MODEL)
    p.add_argument("--test-dir", default=DEFAULT_TEST)
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = evaluate(Path(args.model_dir), Path(args.test_dir))
    except (EvaluationError, OSError, KeyError, ValueError, tarfile.TarError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    m = report["regression_metrics"]
    print("evaluate: " + ", ".join(f"{k}={v['value']:.4f}" for k, v in m.items()) + f" on {report['test_rows']} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
