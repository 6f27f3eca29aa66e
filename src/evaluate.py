"""Evaluate step: score the trained model on the test split and write evaluation.json.

Runs as `python3 evaluate.py` in the SageMaker scikit-learn processing container. Input: the
training job's model.tar.gz under --model-dir and test.csv under --test-dir. Output:
`evaluation.json` in SageMaker's model-quality layout (`regression_metrics.<name>.value`), which
the pipeline's Condition step reads through a PropertyFile.

It writes `baseline.json` beside it: the statistics of the training split under --train-dir and of the
model's predictions for it, which the drift monitor (greenlight/monitor/) compares live traffic with.
Values are read as the model reads them, cast to float32. A column with at most CATEGORICAL_MAX_VALUES
distinct values (the diabetes data's `sex`) is binned by value, since quantile bins over two values
collapse; any other column gets up to QUANTILE_BINS bins, their edges between training values near the
deciles where small changes of a value (NOISE_SHARE of its std) move the fewest rows across. Bin i
holds edges[i-1] < x <= edges[i], the first and last bins open (numpy's `searchsorted(side="left")`,
Python's `bisect_left`: the monitor counts live values exactly as the training values were counted).
Missing values are a share, outside the bins, the mean and the std.
(SageMaker runs this one file, so the statistics live here rather than in a sibling module.)

It also checks that the compact forest (the forest files, evaluated by the model's own `code/`)
predicts exactly what scikit-learn predicts on the test split through every evaluator serving can
pick, records the result under `predictor_parity`, and exits 1 (writing no evaluation.json) if any
prediction differs by a bit.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
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
DEFAULT_TRAIN = os.path.join(CONTAINER_ROOT, "opt/ml/processing/train")
DEFAULT_OUTPUT = os.path.join(CONTAINER_ROOT, "opt/ml/processing/evaluation")
# The smoke-test file the deployer reads (deploy/engine/smoke.py reads this format).
SMOKE_FILE = "smoke.json"
SMOKE_FORMAT = "greenlight-smoke/1"
SMOKE_ROWS = 5
# The drift baseline (read by greenlight/monitor/baseline.py, which checks BASELINE_FORMAT).
BASELINE_FILE = "baseline.json"
BASELINE_FORMAT = "greenlight-baseline/1"
QUANTILE_BINS = 10
CATEGORICAL_MAX_VALUES = 10
NOISE_SHARE = 0.05  # of a column's std: changes this small should not move rows across a bin edge


class EvaluationError(Exception):
    """The model or the test data cannot be evaluated."""


class ParityError(EvaluationError):
    """The compact forest's predictions differ from scikit-learn's; carries the report so far."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report  # no evaluation.json is written: the step fails


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


def load_compact_forest(directory: Path, metadata: dict):
    """The model's forest, read by the compact_forest.py shipped in its code/ (else this directory's).

    The forest file metadata.json names (the manifest, or a legacy forest.npz) is checked against its
    sha256 here; the code checks the arrays the manifest lists as it maps them.
    """
    forest_path = directory / metadata["forest_file"]
    with open(forest_path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if digest != metadata.get("forest_sha256"):
        raise EvaluationError(f"{forest_path.name} sha256 {digest} does not match metadata "
                              f"{metadata.get('forest_sha256')}")
    code = directory / "code"
    if not (code / "compact_forest.py").is_file():
        code = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location("greenlight_eval_compact_forest", code / "compact_forest.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(code))  # for the modules compact_forest.py imports (forest_rows.py)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(code))
    try:
        return module.CompactForest.load(forest_path)
    except module.ForestFormatError as exc:
        raise EvaluationError(str(exc)) from exc


def predictor_parity(expected: np.ndarray, actual: np.ndarray) -> dict:
    """How far the compact forest's predictions are from scikit-learn's; bit_identical is the bar."""
    same = (expected.view(np.uint64) == actual.view(np.uint64)) | (np.isnan(expected) & np.isnan(actual))
    diff = np.abs(expected - actual)
    scale = np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
    return {
        "rows": int(expected.size),
        "bit_identical": bool(same.all()),
        "mismatched_rows": int((~same).sum()),
        "max_abs_diff": float(np.nanmax(diff)) if diff.size else 0.0,
        "max_rel_diff": float(np.nanmax(diff / scale)) if diff.size else 0.0,
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict[str, float]]:
    """MSE, RMSE, MAE and R² of the predictions, as sklearn.metrics defines them, in SageMaker's
    model-quality layout `{name: {"value": v}}`.

    R² of a constant target is 1.0 when every prediction is exact and 0.0 otherwise (scikit-learn's
    `force_finite`). The layout's optional `standard_deviation` is left out: the spread of per-row
    errors is not the uncertainty of these metrics, and RMSE and R² have no per-row counterpart.

    Raises:
        EvaluationError: not one prediction per target, or fewer than two rows (R² is undefined).
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 1 or y_pred.shape != y_true.shape:
        raise EvaluationError(f"predictions of shape {y_pred.shape} for targets of shape {y_true.shape}")
    if y_true.size < 2:
        raise EvaluationError(f"{y_true.size} test row(s): R² needs at least two")
    err = y_true - y_pred
    mse = float(np.mean(err**2))
    ss_res, ss_tot = float(np.sum(err**2)), float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    values = {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(err))), "r2": r2}
    return {name: {"value": value} for name, value in values.items()}


def read_split(directory: Path, name: str) -> pd.DataFrame:
    """The split's CSV files (a directory of them, or one file) as one frame. Raises: EvaluationError."""
    files = sorted(directory.glob("*.csv")) if directory.is_dir() else [directory]
    if not files or not files[0].exists():
        raise EvaluationError(f"no {name} .csv under {directory}")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def column_statistics(values) -> dict:
    """One column's kind, rows, missing share, mean, std, min, max, and bins (edges or values) with counts.

    Raises:
        ValueError: the column has no rows, or every value is missing.
    """
    column = np.asarray(values, dtype=np.float64).astype(np.float32).ravel()
    present = column[~np.isnan(column)]
    if present.size == 0:
        raise ValueError("no rows" if column.size == 0 else "every value is missing")
    wide = present.astype(np.float64)
    stats = {"rows": int(column.size), "missing_share": float(1.0 - present.size / column.size),
             "mean": float(wide.mean()), "std": float(wide.std()), "min": float(wide.min()), "max": float(wide.max())}
    distinct, counts = np.unique(present, return_counts=True)
    if distinct.size <= CATEGORICAL_MAX_VALUES:
        return {"kind": "categorical", **stats, "values": [float(v) for v in distinct],
                "counts": [int(c) for c in counts]}
    edges = _stable_edges(np.sort(present), distinct, counts, NOISE_SHARE * stats["std"])
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
    return {"kind": "numeric", **stats, "edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _stable_edges(ordered: np.ndarray, distinct: np.ndarray, counts: np.ndarray, sigma: float) -> np.ndarray:
    """Bin edges near the deciles where a change of about `sigma` moves the fewest rows across them.

    Candidates are the midpoints between neighbouring observed values within half a bin of each decile; the
    one across which normal noise of `sigma` would change the counts least (rows pushed right minus rows
    pushed left: about nothing in a smooth density, a lot beside a heavy tie) wins, and a decile where even
    that would move over a tenth of a bin's rows (a heavy tie fills the window) gets no edge.
    """
    last, per_bin = ordered.size - 1, ordered.size / QUANTILE_BINS
    wide = distinct.astype(np.float64)
    middles = (wide[:-1] + wide[1:]) / 2
    edges = []
    for q in np.arange(1, QUANTILE_BINS) / QUANTILE_BINS:
        low = ordered[max(0, int(np.floor((q - 0.5 / QUANTILE_BINS) * last)))]
        high = ordered[min(last, int(np.ceil((q + 0.5 / QUANTILE_BINS) * last)))]
        candidates = middles[(middles > low) & (middles < high)]
        if candidates.size > 200:
            candidates = candidates[np.linspace(0, candidates.size - 1, 200).astype(int)]
        best, least = None, math.inf
        for edge in candidates:
            i = int(np.searchsorted(wide, edge))
            near = slice(max(0, i - 3), i + 3)
            # rows noise pushes across from the left minus those it pushes across from the right
            moved = abs(sum((1 if v < edge else -1) * int(c) * 0.5 * math.erfc(abs(v - edge) / (sigma * math.sqrt(2)))
                            for v, c in zip(wide[near], counts[near], strict=True)))
            if moved < least:
                best, least = edge, moved
        if best is not None and least <= 0.1 * per_bin:
            edges.append(best)
    return np.unique(np.asarray(edges, dtype=np.float32))


def build_baseline(X: np.ndarray, feature_names, predictions, model: dict, source: str) -> dict:
    """baseline.json's document: each feature's statistics and the predictions', and the model they describe.

    Raises:
        ValueError: a column that cannot be summarised (named).
    """
    features = []
    for index, name in enumerate(feature_names):
        try:
            features.append({"name": name, **column_statistics(X[:, index])})
        except ValueError as exc:
            raise ValueError(f"feature {name!r}: {exc}") from None
    return {"format": BASELINE_FORMAT, "source": source, "rows": int(X.shape[0]), "model": model,
            "features": features, "prediction": {"name": "prediction", **column_statistics(predictions)}}


def training_baseline(model, metadata: dict, train_dir: Path) -> dict:
    """baseline.json's document: the training split's features and the model's predictions for them."""
    train = read_split(train_dir, "train")
    features = metadata["feature_names"]
    missing = [c for c in features if c not in train.columns]
    if missing:
        raise EvaluationError(f"training data lacks columns {missing}")
    X = train[features].to_numpy(dtype="float64")
    identity = {"sha256": metadata.get("model_sha256"), "target": metadata.get("target"), "features": features}
    try:
        return build_baseline(X, features, model.predict(X), identity, "training split")
    except ValueError as exc:
        raise EvaluationError(f"cannot summarise the training split for the drift baseline: {exc}") from exc


def evaluate(model_dir: Path, test_dir: Path, train_dir: Path | None = None) -> dict:
    """The evaluation report; with train_dir, the drift baseline too (under "baseline")."""
    test = read_split(test_dir, "test")
    with tempfile.TemporaryDirectory() as tmp:
        directory = unpack_model(model_dir, Path(tmp))
        model, metadata = load_model(directory)
        forest = load_compact_forest(directory, metadata) if metadata.get("forest_file") else None
    features, target = metadata["feature_names"], metadata["target"]
    missing = [c for c in [target, *features] if c not in test.columns]
    if missing:
        raise EvaluationError(f"test data lacks columns {missing}")
    X = test[features].to_numpy(dtype="float64")
    y_pred = model.predict(X)
    metrics = regression_metrics(test[target].to_numpy(dtype="float64"), y_pred)
    if not all(math.isfinite(m["value"]) for m in metrics.values()):
        raise EvaluationError(f"non-finite metrics: {metrics}")
    report = {"regression_metrics": metrics, "test_rows": int(len(test)), "smoke": smoke_test(X, y_pred)}
    if train_dir is not None:
        report["baseline"] = training_baseline(model, metadata, train_dir)
    if forest is None:
        report["predictor_parity"] = {"checked": False, "reason": "metadata.json names no forest_file"}
        return report
    expected = np.asarray(y_pred, dtype=np.float64)
    if hasattr(forest, "predict_each_way"):  # every evaluator serving can pick, by batch size
        ways = forest.predict_each_way(X)
    else:
        ways = {"predict": forest.predict(X)}
    checked = {name: predictor_parity(expected[:len(got)], got) for name, got in ways.items()}
    worst = max(checked.values(), key=lambda p: (p["mismatched_rows"], p["max_abs_diff"]))
    parity = {**worst, "rows": int(expected.size), "bit_identical": all(p["bit_identical"] for p in checked.values()),
              "evaluators": checked}
    report["predictor_parity"] = {"checked": True, "predictor": metadata.get("forest_format"), **parity}
    if not parity["bit_identical"]:
        bad = ", ".join(f"{name} on {p['mismatched_rows']} of {p['rows']} rows" for name, p in checked.items()
                        if not p["bit_identical"])
        raise ParityError(
            f"the compact forest differs from scikit-learn ({bad}; max abs diff {parity['max_abs_diff']:.3g}, "
            f"max rel diff {parity['max_rel_diff']:.3g}); "
            "the serving path would not answer what was evaluated", report)
    return report


def smoke_test(X: np.ndarray, y_pred: np.ndarray, rows: int = SMOKE_ROWS) -> dict:
    """The first test rows as a text/csv request body and the model's exact predictions for them.

    The deployer sends `body` to every newly deployed version and compares its answer with
    `predictions` bit for bit (repr floats survive text and JSON exactly).
    """
    n = min(rows, len(X))
    body = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X[:n])
    return {"format": SMOKE_FORMAT, "content_type": "text/csv", "body": body,
            "predictions": [float(p) for p in np.asarray(y_pred[:n], dtype=np.float64)]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default=DEFAULT_MODEL)
    p.add_argument("--test-dir", default=DEFAULT_TEST)
    p.add_argument("--train-dir", default=None, help="the training split, summarised in baseline.json (default: "
                   f"{DEFAULT_TRAIN} when it exists; without one no baseline is written, and the summary says so)")
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT)
    return p.parse_args(argv)


def write_report(out: Path, report: dict) -> None:
    """evaluation.json, and beside it smoke.json (the smoke-test rows) and baseline.json (the drift baseline),
    both linked from the model package."""
    out.mkdir(parents=True, exist_ok=True)
    report = dict(report)
    smoke = report.pop("smoke", None)
    baseline = report.pop("baseline", None)
    if baseline is not None:
        (out / BASELINE_FILE).write_text(json.dumps(baseline, indent=1) + "\n", encoding="utf-8")
    (out / "evaluation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if smoke is not None:
        (out / SMOKE_FILE).write_text(json.dumps(smoke, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output_dir)
    train_dir = args.train_dir or (DEFAULT_TRAIN if Path(DEFAULT_TRAIN).is_dir() else None)
    try:
        report = evaluate(Path(args.model_dir), Path(args.test_dir), None if train_dir is None else Path(train_dir))
    except (EvaluationError, OSError, KeyError, ValueError, tarfile.TarError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 1
    write_report(out, report)
    m = report["regression_metrics"]
    parity = report["predictor_parity"]
    checked = "bit-identical to scikit-learn" if parity.get("checked") else "not checked (no forest file)"
    baseline = (f"drift baseline of {report['baseline']['rows']} training rows" if "baseline" in report
                else "no drift baseline (no training split given)")
    print("evaluate: " + ", ".join(f"{k}={v['value']:.4f}" for k, v in m.items()) + f" on {report['test_rows']} rows;"
          f" compact forest {checked}; {baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
