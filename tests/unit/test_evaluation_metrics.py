"""src/evaluate.py's regression metrics against sklearn.metrics, on fixed data."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score, root_mean_squared_error

from tests.conftest import imported_src_modules


@pytest.fixture(scope="module")
def evaluate():
    with imported_src_modules(("evaluate",)) as modules:
        yield modules.evaluate


def sklearn_metrics(y_true, y_pred) -> dict[str, float]:
    return {"mse": mean_squared_error(y_true, y_pred), "rmse": root_mean_squared_error(y_true, y_pred),
            "mae": mean_absolute_error(y_true, y_pred), "r2": r2_score(y_true, y_pred)}


def values(metrics: dict) -> dict[str, float]:
    return {name: m["value"] for name, m in metrics.items()}


RNG = np.random.default_rng(20240611)
TARGET = RNG.uniform(25.0, 346.0, 500)  # the diabetes target's range
CASES = {
    "sklearn's documented example": ([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]),
    "a forest-like fit": (TARGET, TARGET + RNG.normal(0.0, 50.0, TARGET.size)),
    "biased predictions": (TARGET, TARGET * 0.8 + 30.0),
    "worse than the mean (negative R²)": (TARGET, TARGET[::-1]),
    "perfect predictions": (TARGET, TARGET.copy()),
    "two rows": ([1.0, 2.0], [1.5, 1.5]),
    "constant target, perfect predictions": ([5.0] * 4, [5.0] * 4),
    "constant target, imperfect predictions": ([5.0] * 4, [5.0, 6.0, 4.0, 5.0]),
    "constant prediction of the mean": ([1.0, 2.0, 3.0, 6.0], [3.0] * 4),
}


@pytest.mark.parametrize("case", list(CASES))
def test_metrics_equal_sklearn_metrics(evaluate, case):
    y_true, y_pred = (np.asarray(a, dtype=np.float64) for a in CASES[case])
    ours, theirs = values(evaluate.regression_metrics(y_true, y_pred)), sklearn_metrics(y_true, y_pred)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert math.isclose(ours[name], theirs[name], rel_tol=1e-12, abs_tol=1e-12), (name, ours[name], theirs[name])


def test_hand_computed_values_of_sklearns_documented_example(evaluate):
    # errors 0.5, -0.5, 0, -1: MSE 1.5/4, MAE 2/4; the target's mean is 2.875, sum of squares 29.1875
    got = values(evaluate.regression_metrics(np.array([3, -0.5, 2, 7.0]), np.array([2.5, 0.0, 2, 8.0])))
    assert got == pytest.approx({"mse": 0.375, "rmse": math.sqrt(0.375), "mae": 0.5, "r2": 1 - 1.5 / 29.1875},
                                rel=1e-15)


def test_perfect_predictions_score_zero_errors_and_r2_of_one(evaluate):
    assert values(evaluate.regression_metrics(TARGET, TARGET.copy())) == {"mse": 0.0, "rmse": 0.0, "mae": 0.0, "r2": 1.0}


@pytest.mark.parametrize(("y_pred", "r2"), [([7.0, 7.0, 7.0], 1.0), ([7.0, 7.0, 7.5], 0.0), ([0.0, 0.0, 0.0], 0.0)])
def test_r2_of_a_constant_target_is_defined_as_sklearn_defines_it(evaluate, y_pred, r2):
    y_true = np.array([7.0, 7.0, 7.0])
    assert evaluate.regression_metrics(y_true, np.array(y_pred))["r2"]["value"] == r2 == r2_score(y_true, y_pred)


def test_the_layout_is_sagemakers_with_values_only(evaluate):
    metrics = evaluate.regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 2.0]))
    assert set(metrics) == {"mse", "rmse", "mae", "r2"}
    assert all(m.keys() == {"value"} and type(m["value"]) is float for m in metrics.values())
    assert json.loads(json.dumps(metrics)) == metrics


@pytest.mark.parametrize(("y_true", "y_pred", "message"), [
    ([], [], r"0 test row\(s\): R² needs at least two"),
    ([3.0], [2.0], r"1 test row\(s\): R² needs at least two"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], r"predictions of shape \(2,\) for targets of shape \(3,\)"),
    ([1.0, 2.0, 3.0], [[1.0], [2.0], [3.0]], r"predictions of shape \(3, 1\)"),  # would broadcast to 3 x 3
])
def test_what_has_no_metrics_is_an_evaluation_error(evaluate, y_true, y_pred, message):
    with pytest.raises(evaluate.EvaluationError, match=message):
        evaluate.regression_metrics(np.array(y_true), np.array(y_pred))


def test_sklearn_also_leaves_r2_of_one_row_undefined():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(r2_score([3.0], [2.0]))
