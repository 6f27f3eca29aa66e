"""The three src/ scripts run in sequence as SageMaker would run them, and refuse bad data."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from greenlight.data import write_default_dataset

SRC = Path(__file__).resolve().parents[2] / "src"


def script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SRC / f"{name}.py"), *args], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def pipeline_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps")
    write_default_dataset(root / "input")
    pre = script("preprocess", "--input-dir", str(root / "input"), "--output-dir", str(root / "splits"))
    assert pre.returncode == 0, pre.stderr
    train = script("train", "--train", str(root / "splits/train"), "--validation", str(root / "splits/validation"),
                   "--model-dir", str(root / "model"), "--n_estimators", "20", "--n_jobs", "1")
    assert train.returncode == 0, train.stderr
    ev = script("evaluate", "--model-dir", str(root / "model"), "--test-dir", str(root / "splits/test"),
                "--output-dir", str(root / "evaluation"))
    assert ev.returncode == 0, ev.stderr
    return root


def test_preprocess_splits_deterministically(pipeline_outputs, tmp_path):
    sizes = {n: len((pipeline_outputs / f"splits/{n}/{n}.csv").read_text().splitlines()) - 1
             for n in ("train", "validation", "test")}
    assert sum(sizes.values()) == 442 and sizes["test"] == sizes["validation"] == 67
    again = script("preprocess", "--input-dir", str(pipeline_outputs / "input"), "--output-dir", str(tmp_path))
    assert again.returncode == 0
    assert (tmp_path / "test/test.csv").read_bytes() == (pipeline_outputs / "splits/test/test.csv").read_bytes()
    header = (tmp_path / "train/train.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "target" and len(header) == 11


def test_train_writes_model_metadata_and_serving_code(pipeline_outputs):
    import hashlib

    model = pipeline_outputs / "model"
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["model_sha256"] == hashlib.sha256((model / "model.joblib").read_bytes()).hexdigest()
    assert meta["feature_names"] == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    assert meta["versions"]["scikit-learn"].startswith("1.9.")
    assert meta["rows"]["train"] == 308 and meta["hyperparameters"]["n_estimators"] == 20
    assert (model / "code" / "inference.py").is_file()


def test_evaluation_json_has_finite_metrics_in_sagemaker_layout(pipeline_outputs):
    report = json.loads((pipeline_outputs / "evaluation/evaluation.json").read_text())
    metrics = report["regression_metrics"]
    assert set(metrics) >= {"rmse", "mae", "r2", "mse"}
    assert all(math.isfinite(m["value"]) for m in metrics.values())
    assert math.isclose(metrics["rmse"]["value"] ** 2, metrics["mse"]["value"], rel_tol=1e-9)
    assert 0 < metrics["r2"]["value"] < 1


def test_evaluation_json_metrics_are_sklearns_on_the_models_test_predictions(pipeline_outputs):
    import joblib
    import pandas as pd
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score, root_mean_squared_error

    report = json.loads((pipeline_outputs / "evaluation/evaluation.json").read_text())
    meta = json.loads((pipeline_outputs / "model/metadata.json").read_text())
    test = pd.read_csv(pipeline_outputs / "splits/test/test.csv")
    y_true = test[meta["target"]].to_numpy(dtype="float64")
    y_pred = joblib.load(pipeline_outputs / "model/model.joblib").predict(test[meta["feature_names"]].to_numpy("float64"))
    expected = {"mse": mean_squared_error(y_true, y_pred), "rmse": root_mean_squared_error(y_true, y_pred),
                "mae": mean_absolute_error(y_true, y_pred), "r2": r2_score(y_true, y_pred)}
    assert report["regression_metrics"] == {name: {"value": pytest.approx(v, rel=1e-12)} for name, v in expected.items()}
    assert report["test_rows"] == len(test) == 67
    assert "standard_deviation" not in json.dumps(report), "values only: no made-up spreads"


BAD = {
    "missing target column": ("a,b\n1,2\n3,4\n", "missing target column 'target'"),
    "empty input (header only)": ("age,target\n", "empty input"),
    "non-numeric feature columns": ("age,city,target\n1,Paris,3\n2,Rome,4\n" * 1, "non-numeric feature columns: 'city'"),
    "NaN in the target": ("age,target\n" + "".join(f"{i},{i}\n" for i in range(20)) + "5,\n", "NaN/inf in target column"),
    "inf in the target": ("age,target\n" + "".join(f"{i},{i}\n" for i in range(20)) + "5,inf\n", "NaN/inf in target column"),
    "fewer rows than the split needs": ("age,target\n1,2\n3,4\n", "too few rows: 2 row(s)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_data_fails_with_its_own_line(case, tmp_path):
    text, expected = BAD[case]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text(text)
    proc = script("preprocess", "--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("preprocess: error: "), proc.stderr
    assert expected in lines[0]
    assert not (tmp_path / "out").exists(), "nothing may be written for bad data"


def test_no_csv_files_is_empty_input(tmp_path):
    (tmp_path / "in").mkdir()
    proc = script("preprocess", "--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 1 and "empty input: no .csv files" in proc.stderr


def test_several_csv_files_are_concatenated(tmp_path):
    (tmp_path / "in").mkdir()
    rows = [f"{i},{i * 2}\n" for i in range(40)]
    (tmp_path / "in" / "a.csv").write_text("x,target\n" + "".join(rows[:20]))
    (tmp_path / "in" / "b.csv").write_text("x,target\n" + "".join(rows[20:]))
    proc = script("preprocess", "--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    total = sum(len((tmp_path / f"out/{n}/{n}.csv").read_text().splitlines()) - 1 for n in ("train", "validation", "test"))
    assert total == 40


def test_custom_target_column(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "d.csv").write_text("price,size\n" + "".join(f"{i * 3},{i}\n" for i in range(30)))
    proc = script("preprocess", "--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                  "--target-column", "price")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out/train/train.csv").read_text().splitlines()[0] == "price,size"
