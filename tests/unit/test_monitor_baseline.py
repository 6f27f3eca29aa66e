"""baseline.json as evaluate.py writes it (numpy) and as the monitor reads and bins it (pure Python): the two
count the same values into the same bins, and bad documents are refused naming what is wrong."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import imported_src_modules

from greenlight.data import default_dataset_csv
from greenlight.errors import DataError
from greenlight.monitor.baseline import Baseline, ColumnBaseline, float32


@pytest.fixture(scope="module")
def evaluate():
    with imported_src_modules(("evaluate",)) as modules:
        yield modules.evaluate


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(default_dataset_csv()))


@pytest.fixture(scope="module")
def document(evaluate, data) -> dict:
    features = list(data.columns[:-1])
    X = data[features].to_numpy()
    return evaluate.build_baseline(X, features, data["target"].to_numpy(dtype=float),
                                   {"sha256": "abc", "target": "target", "features": features}, "test data")


def test_the_monitor_counts_the_training_values_exactly_as_evaluate_did(document, data):
    # GIVEN the baseline evaluate.py wrote for the diabetes data
    baseline = Baseline.parse(document, "test")
    # WHEN the monitor bins the same values (from JSON floats, in pure Python)
    for column in baseline.features:
        counts, missing = column.count(data[column.name].tolist())
        # THEN every bin holds what evaluate.py counted, at every bin edge and tie
        assert counts == column.baseline_counts() and missing == 0, column.name
    counts, _ = baseline.prediction.count(data["target"].tolist())
    assert counts == baseline.prediction.baseline_counts()


def test_a_low_cardinality_feature_is_binned_by_value_and_the_others_by_quantile(document):
    kinds = {f["name"]: f["kind"] for f in document["features"]}
    assert kinds.pop("sex") == "categorical" and set(kinds.values()) == {"numeric"}
    sex = next(f for f in document["features"] if f["name"] == "sex")
    assert len(sex["values"]) == 2 and sum(sex["counts"]) == 442
    bmi = next(f for f in document["features"] if f["name"] == "bmi")
    assert 6 <= len(bmi["edges"]) + 1 <= 10 and sum(bmi["counts"]) == 442
    assert max(bmi["counts"]) < 442 / 4  # no bin swallows the column


def test_small_noise_moves_few_rows_across_the_edges_even_beside_heavy_ties(document, data):
    # GIVEN the diabetes baseline (s4 holds 108 rows at one value, 128 at another)
    baseline = Baseline.parse(document, "test")
    rng = np.random.default_rng(3)
    for column in baseline.features:
        values = data[column.name].to_numpy()
        # WHEN every value moves by noise of 5% of the column's standard deviation
        noisy = values + rng.normal(0, 0.05 * values.std(), values.size)
        counts, _ = column.count(noisy.tolist() if not column.categorical else values.tolist())
        # THEN no bin gains or loses more than a few percent of the rows
        moved = sum(abs(a - b) for a, b in zip(counts, column.baseline_counts(), strict=True)) / 2
        assert moved <= 0.04 * values.size, (column.name, counts, column.baseline_counts())


def test_mean_std_and_missing_share_leave_missing_values_out(evaluate):
    stats = evaluate.column_statistics([1.0, 2.0, np.nan, 3.0])
    assert stats["missing_share"] == 0.25 and stats["mean"] == pytest.approx(2.0)
    assert stats["std"] == pytest.approx(np.std([1.0, 2.0, 3.0])) and stats["kind"] == "categorical"
    column = ColumnBaseline.parse({"name": "x", **stats}, "test")
    assert column.count([1.0, None, float("nan"), 7.0]) == ([1, 0, 0, 1], 2)  # 7 is "other"; two missing


def test_values_are_compared_as_float32(evaluate):
    column = ColumnBaseline.parse({"name": "x", **evaluate.column_statistics([0.1, 0.2, 0.1])}, "test")
    assert column.count([0.1, float32(0.1), 0.2000000001]) == ([2, 1, 0], 0)
    assert float32(1e300) == float("inf") and float32(-1e300) == float("-inf")


def test_an_all_missing_column_cannot_be_summarised(evaluate):
    with pytest.raises(ValueError, match="feature 'x': every value is missing"):
        evaluate.build_baseline(np.array([[np.nan], [np.nan]]), ["x"], np.array([1.0, 2.0]), {}, "t")


@pytest.mark.parametrize("damage, words", [
    (lambda d: d.update(format="greenlight-baseline/9"), "not a greenlight-baseline/1 baseline"),
    (lambda d: d.pop("prediction"), "the baseline lacks 'prediction'"),
    (lambda d: d["features"][2].update(counts=[1, 2]), "has 2 counts for"),
    (lambda d: d["features"][0].update(kind="ordinal"), "unknown kind 'ordinal'"),
    (lambda d: d["features"][0].update(edges=[0.2, 0.1]), "edges are not strictly increasing"),
])
def test_a_damaged_baseline_is_refused_naming_the_problem(document, damage, words):
    broken = copy.deepcopy(document)
    damage(broken)
    with pytest.raises(DataError, match="model version 7") as refused:
        Baseline.parse(json.loads(json.dumps(broken)), "model version 7")
    assert words in str(refused.value)
