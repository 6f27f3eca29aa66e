"""Train step: fit a RandomForestRegressor and write model.joblib, the forest files, metadata.json and code/.

Runs as the entry script of a SageMaker training job (scikit-learn image). Data comes from the
`train` (and optional `validation`) channels, hyperparameters from the command line, as the
SageMaker toolkit passes them (`--n_estimators 100`). Everything under --model-dir is packed
as model.tar.gz; `code/` in it is what the SageMaker scikit-learn serving container runs.
The forest files (`forest.json` and its `forest.*.npy` arrays, forest_export.py) hold the same forest
as flat arrays in the layout the serving code maps and evaluates with numpy alone; the manifest's
sha256 and format are in metadata.json (`forest_file`, `forest_sha256`), and so is each array's
(`forest_files`: file -> sha256, as in the manifest): metadata.json names every file serving reads with
its digest, which is how deploy/image/model_files.py picks the Lambda image's model layer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import RandomForestRegressor

import forest_export
import forest_files

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
# Files of this directory that the serving container and the Lambda image need: every module
# the serving path imports (tests/unit/test_inference_packaging.py checks the list).
SERVING_CODE = ("inference.py", "payload.py", "csv_numbers.py", "serving_contract.py", "compact_forest.py",
                "forest_files.py", "forest_rows.py", "sagemaker_entry.py", "lambda_function.py", "capture.py")


class TrainingError(Exception):
    """The training data or a hyperparameter cannot be used."""


def none_or(convert):
    def parse(value: str):
        if str(value).strip().lower() in {"none", "null", ""}:
            return None
        return convert(value)

    return parse


def parse_max_features(value: str):
    text = str(value).strip().lower()
    if text in {"none", "null", "all", ""}:
        return None
    if text in {"sqrt", "log2"}:
        return text
    return float(text) if any(ch in text for ch in ".e") else int(text)


def sha256_of(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def load_split(directory: str | None, name: str) -> pd.DataFrame | None:
    if not directory:
        return None
    path = Path(directory)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise TrainingError(f"channel {name!r} at {directory} has no .csv file")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def fit(train: pd.DataFrame, hp: dict) -> tuple[RandomForestRegressor, list[str], str]:
    target, *features = list(train.columns)
    model = RandomForestRegressor(**hp)
    model.fit(train[features].to_numpy(dtype="float64"), train[target].to_numpy(dtype="float64"))
    # A forest keeps n_jobs; single-row predict with n_jobs=-1 is about 4x slower (see research).
    model.set_params(n_jobs=None)
    return model, features, target


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n_estimators", "--n-estimators", type=int, default=100)
    p.add_argument("--max_depth", "--max-depth", type=none_or(int), default=None)
    p.add_argument("--min_samples_leaf", "--min-samples-leaf", type=int, default=1)
    p.add_argument("--max_features", "--max-features", type=parse_max_features, default=1.0)
    p.add_argument("--random_state", "--random-state", type=int, default=0)
    p.add_argument("--n_jobs", "--n-jobs", type=int, default=-1)
    p.add_argument("--model-dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--train", default=env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--validation", default=env.get("SM_CHANNEL_VALIDATION"))
    p.add_argument("--code-dir", default=str(Path(__file__).resolve().parent),
                   help="where the serving code is copied from (default: this script's directory)")
    return p.parse_args(argv)


def write_failure(message: str) -> None:
    """SageMaker shows /opt/ml/output/failure as the job's FailureReason."""
    out = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
    if out.is_dir():
        (out / "failure").write_text(message + "\n", encoding="utf-8")


def save_model(model_dir: Path, model, features: list[str], target: str, train: pd.DataFrame,
               validation: pd.DataFrame | None, hp: dict, code_dir_from: Path) -> dict:
    """Write model.joblib, the forest files, metadata.json and code/ (from code_dir_from); return the metadata."""
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    forest = forest_export.export_forest(model, model_dir)
    metrics = {}
    if validation is not None and len(validation):
        pred = model.predict(validation[features].to_numpy(dtype="float64"))
        err = validation[target].to_numpy(dtype="float64") - pred
        metrics["validation_rmse"] = float(np.sqrt(np.mean(err**2)))
        print(f"validation:rmse={metrics['validation_rmse']:.6f};")  # for SageMaker metric definitions
    metadata = {
        "format": "greenlight-model/1",
        "model_file": MODEL_FILE,
        "model_sha256": sha256_of(model_dir / MODEL_FILE),
        "forest_file": forest_files.MANIFEST_FILE,
        "forest_sha256": sha256_of(model_dir / forest_files.MANIFEST_FILE),
        "forest_format": forest["format"],
        "forest": {key: forest[key] for key in ("trees", "nodes", "max_depth", "bytes", "row_layout")},
        "forest_files": {spec["file"]: spec["sha256"] for spec in forest["arrays"].values()},
        "estimator": "sklearn.ensemble.RandomForestRegressor",
        "target": target,
        "feature_names": features,
        "n_features": len(features),
        "accepts_missing_values": bool(train[features].isna().to_numpy().any()),
        "rows": {"train": int(len(train)), "validation": int(len(validation)) if validation is not None else 0},
        "hyperparameters": hp,
        "metrics": metrics,
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "joblib": joblib.__version__,
            "sagemaker-sdk": os.environ.get("GREENLIGHT_SAGEMAKER_SDK_VERSION", "unknown"),
            "sklearn-image": os.environ.get("GREENLIGHT_SKLEARN_IMAGE_VERSION", "unknown"),
        },
    }
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    for name in SERVING_CODE:
        shutil.copy2(code_dir_from / name, code_dir / name)
    return metadata


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hp = {
        "n_estimators": args.n_estimators,
        "max_depth": args.max_depth,
        "min_samples_leaf": args.min_samples_leaf,
        "max_features": args.max_features,
        "random_state": args.random_state,
        "n_jobs": args.n_jobs,
    }
    try:
        train = load_split(args.train, "train")
        validation = load_split(args.validation, "validation")
        if train is None or len(train) < 2 or train.shape[1] < 2:
            raise TrainingError("the train channel needs a header, a target column and at least 2 rows")
        model, features, target = fit(train, hp)
    except (TrainingError, ValueError, OSError) as exc:
        message = f"train: error: {exc}"
        print(message, file=sys.stderr)
        write_failure(message)
        return 1

    save_model(Path(args.model_dir), model, features, target, train, validation, hp, Path(args.code_dir))
    print(f"train: {len(train)} rows, {len(features)} features, {args.n_estimators} trees -> {args.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
