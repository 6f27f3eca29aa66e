"""evaluate.py checks the compact forest against scikit-learn on the test split and fails the step if they differ."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from greenlight.data import write_default_dataset

SRC = Path(__file__).resolve().parents[2] / "src"


def run(script: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SRC / script), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate")
    write_default_dataset(tmp / "data")
    assert run("preprocess.py", "--input-dir", tmp / "data", "--output-dir", tmp / "splits").returncode == 0
    done = run("train.py", "--train", tmp / "splits" / "train", "--model-dir", tmp / "model", "--n_estimators", 30,
               "--n_jobs", 1)
    assert done.returncode == 0, done.stderr
    return tmp


def test_parity_is_recorded_in_evaluation_json(trained, tmp_path):
    done = run("evaluate.py", "--model-dir", trained / "model", "--test-dir", trained / "splits" / "test",
               "--output-dir", tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert set(report["regression_metrics"]) == {"mse", "rmse", "mae", "r2"}
    parity = report["predictor_parity"]
    rows = report["test_rows"]
    exact = {"bit_identical": True, "mismatched_rows": 0, "max_abs_diff": 0.0, "max_rel_diff": 0.0}
    assert parity == {"checked": True, "predictor": "greenlight-forest/2", "rows": rows, **exact,
                      "evaluators": {name: {"rows": rows, **exact}
                                     for name in ("row_layout", "row_walk", "all_trees", "tree_by_tree")}}
    assert "bit-identical" in done.stdout


def test_parity_is_checked_inside_model_tar_gz(trained, tmp_path):
    # GIVEN the model as SageMaker hands it to the processing job: model.tar.gz only
    packed = tmp_path / "packed"
    packed.mkdir()
    with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:
        for path in (trained / "model").iterdir():
            tar.add(path, arcname=path.name)
    done = run("evaluate.py", "--model-dir", packed, "--test-dir", trained / "splits" / "test",
               "--output-dir", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text())["predictor_parity"]["bit_identical"]


DRIFTS = {  # one evaluator off by one part in 1e15 (module, code, drifted code); the others untouched
    "all_trees": ("compact_forest.py", "leaf_values = self._value.take(node).reshape(self.n_trees, k)",
                  "leaf_values = self._value.take(node).reshape(self.n_trees, k) * (1 + 1e-15)"),
    "tree_by_tree": ("compact_forest.py", '            self._value.take(node, out=leafv, mode="wrap")\n',
                     '            self._value.take(node, out=leafv, mode="wrap")\n            leafv *= 1 + 1e-15\n'),
    "row_walk": ("compact_forest.py", "return float(_accumulate(self._value.take(node))[-1]) + 0.0",
                 "return float(_accumulate(self._value.take(node))[-1]) * (1 + 1e-15) + 0.0"),
    "row_layout": ("forest_rows.py", "return float(_accumulate(self._value.take(node))[-1]) + 0.0",
                   "return float(_accumulate(self._value.take(node))[-1]) * (1 + 1e-15) + 0.0"),
}


@pytest.mark.parametrize("evaluator", sorted(DRIFTS))
def test_a_predictor_that_drifts_fails_the_step(trained, tmp_path, evaluator):
    # GIVEN a model whose shipped serving code is off by one part in 1e15 in one of its evaluators
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained / "model", model)
    module, old, new = DRIFTS[evaluator]
    code = model / "code" / module
    text = code.read_text()
    assert text.count(old) == 1
    code.write_text(text.replace(old, new))
    # WHEN it is evaluated
    done = run("evaluate.py", "--model-dir", model, "--test-dir", trained / "splits" / "test",
               "--output-dir", tmp_path / "out")
    # THEN the step fails with a message naming the evaluator and how far off, and writes no evaluation.json
    assert done.returncode == 1
    assert "compact forest differs from scikit-learn" in done.stderr
    assert f"({evaluator} on " in done.stderr
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_a_tampered_forest_fails_the_step(trained, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained / "model", model)
    for victim, message in (("forest.value.npy", "refusing forest.value.npy: its sha256 is"),
                            ("forest.json", "forest.json sha256")):
        data = bytearray((model / victim).read_bytes())
        data[-200] ^= 0x10
        (model / victim).write_bytes(bytes(data))
        done = run("evaluate.py", "--model-dir", model, "--test-dir", trained / "splits" / "test",
                   "--output-dir", tmp_path / "out")
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert not (tmp_path / "out" / "evaluation.json").exists()


def test_a_model_shipping_older_serving_code_is_checked_through_predict(trained, tmp_path):
    # GIVEN a model whose code/compact_forest.py predates predict_each_way (only `predict`)
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained / "model", model)
    code = model / "code" / "compact_forest.py"
    text = code.read_text()
    assert text.count("def predict_each_way(") == 1
    code.write_text(text.replace("def predict_each_way(", "def _not_in_older_versions("))
    # WHEN it is evaluated
    done = run("evaluate.py", "--model-dir", model, "--test-dir", trained / "splits" / "test",
               "--output-dir", tmp_path / "out")
    # THEN parity is still checked, through the one evaluator that code offers
    assert done.returncode == 0, done.stderr
    parity = json.loads((tmp_path / "out" / "evaluation.json").read_text())["predictor_parity"]
    assert parity["bit_identical"] and list(parity["evaluators"]) == ["predict"]
