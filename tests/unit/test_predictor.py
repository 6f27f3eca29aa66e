"""The compact forest predicts exactly what scikit-learn's RandomForestRegressor.predict does, bit for bit."""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_regression
from sklearn.ensemble import RandomForestRegressor

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def cf():
    """src/compact_forest.py imported by bare name, as the containers do; forgotten afterwards."""
    sys.path.insert(0, str(SRC))
    try:
        yield importlib.import_module("compact_forest")
    finally:
        sys.path.remove(str(SRC))
        sys.modules.pop("compact_forest", None)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    model = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=-1).fit(X, y)
    model.set_params(n_jobs=1)
    return model, X


def export_and_load(cf, model, tmp_path: Path):
    path = tmp_path / "forest.npz"
    summary = cf.export_forest(model, path)
    return cf.CompactForest.load(path), summary


def assert_bit_identical(expected: np.ndarray, actual: np.ndarray) -> None:
    assert expected.dtype == actual.dtype == np.float64
    assert expected.shape == actual.shape
    mismatched = np.flatnonzero(expected.view(np.uint64) != actual.view(np.uint64))
    assert mismatched.size == 0, (f"{mismatched.size} rows differ, first {mismatched[:5]}: "
                                  f"{expected[mismatched[:5]]} vs {actual[mismatched[:5]]}")


def test_export_summary_and_format(cf, diabetes, tmp_path):
    model, _ = diabetes
    forest, summary = export_and_load(cf, model, tmp_path)
    assert summary == {"format": "greenlight-forest/1", "trees": 100,
                       "nodes": sum(e.tree_.node_count for e in model.estimators_),
                       "max_depth": max(e.tree_.max_depth for e in model.estimators_)}
    assert (forest.n_trees, forest.n_features, forest.max_depth) == (100, 10, summary["max_depth"])


def test_diabetes_parity_every_path(cf, diabetes, tmp_path, monkeypatch):
    # GIVEN the research model (100 trees on the diabetes data) and its compact export
    model, X = diabetes
    forest, _ = export_and_load(cf, model, tmp_path)
    expected = model.predict(X)
    # WHEN predicting as a batch (all trees together; one tree at a time), row by row, and as a small batch
    monkeypatch.setattr(cf, "SMALL_BATCH_ROWS", 0)
    pairs = forest.predict(X)
    monkeypatch.setattr(cf, "LEVELS_MIN_ROWS", 0)
    levels = forest.predict(X)
    rows = np.array([forest.predict_row(x) for x in X.astype(np.float32)])
    monkeypatch.setattr(cf, "SMALL_BATCH_ROWS", 64)
    small = forest.predict(X[:64])
    # THEN every path is bit-identical to scikit-learn
    assert_bit_identical(expected, pairs)
    assert_bit_identical(expected, levels)
    assert_bit_identical(expected, rows)
    assert_bit_identical(expected[:64], small)


def test_level_traversal_serves_single_rows_of_big_forests(cf, diabetes, tmp_path, monkeypatch):
    model, X = diabetes
    monkeypatch.setattr(cf, "SINGLE_ROW_LAYOUT_MAX_NODES", 10)  # as for a forest too big for the row layout
    forest, _ = export_and_load(cf, model, tmp_path)
    assert forest._single is None
    assert_bit_identical(model.predict(X[:20]), np.array([forest.predict_row(x) for x in X[:20].astype(np.float32)]))
    assert_bit_identical(model.predict(X[:20]), forest.predict(X[:20]))


def test_values_at_thresholds_follow_float32_comparison(cf, diabetes, tmp_path):
    # GIVEN rows whose values sit on, just below and just above the float32 image of split thresholds,
    # and float64 values that only collapse onto a threshold once cast to float32
    model, X = diabetes
    forest, _ = export_and_load(cf, model, tmp_path)
    tree = model.estimators_[0].tree_
    internal = np.flatnonzero(tree.children_left >= 0)[:200]
    rows = []
    for node in internal:
        t = tree.threshold[node]
        t32 = np.float32(t)
        for v in (t, float(t32), float(np.nextafter(t32, np.float32(np.inf))), float(np.nextafter(t32, np.float32(-np.inf))),
                  np.nextafter(t, np.inf), np.nextafter(t, -np.inf)):
            row = X[node % len(X)].copy()
            row[tree.feature[node]] = v
            rows.append(row)
    rows = np.array(rows)
    # THEN the compact forest agrees with scikit-learn on every one
    assert_bit_identical(model.predict(rows), forest.predict(rows))
    assert_bit_identical(model.predict(rows[:50]), np.array([forest.predict_row(r) for r in rows[:50].astype(np.float32)]))


def test_sum_order_matches_the_forest_loop(cf, tmp_path):
    # GIVEN a forest whose leaf values span magnitudes, where the order of additions changes the last bit
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5))
    y = np.exp(rng.normal(scale=6, size=400)) * rng.choice([-1, 1], size=400)
    model = RandomForestRegressor(n_estimators=60, random_state=0, n_jobs=1).fit(X, y)
    forest, _ = export_and_load(cf, model, tmp_path)
    expected = model.predict(X)
    per_tree = np.stack([e.predict(X.astype(np.float32)) for e in model.estimators_])
    # (a pairwise sum, what np.sum does along a contiguous axis, differs in some rows: the test can tell)
    assert (np.sum(per_tree.T.copy(), axis=1) / 60 != expected).any()
    # THEN the compact forest's tree-by-tree sum is exactly scikit-learn's
    assert_bit_identical(expected, forest.predict(X))
    assert_bit_identical(expected, np.array([forest.predict_row(x) for x in X.astype(np.float32)]))


def test_missing_values_follow_missing_go_to_left(cf, tmp_path):
    # GIVEN a forest trained on data with NaN (scikit-learn routes NaN by missing_go_to_left)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, 6))
    y = X[:, 0] * 3 + np.where(np.isnan(X[:, 1]), 5.0, X[:, 1])
    X[rng.random(X.shape) < 0.2] = np.nan
    y = y + np.isnan(X[:, 2]) * 4.0
    model = RandomForestRegressor(n_estimators=30, random_state=0, n_jobs=1).fit(X, y)
    forest, _ = export_and_load(cf, model, tmp_path)
    assert forest.has_missing_routing
    # WHEN predicting rows with NaN in any feature, and rows without
    X_test = rng.normal(size=(300, 6))
    X_test[rng.random(X_test.shape) < 0.3] = np.nan
    expected = model.predict(X_test)
    # THEN both paths match scikit-learn, NaN included
    assert_bit_identical(expected, forest.predict(X_test))
    assert_bit_identical(expected, np.array([forest.predict_row(x) for x in X_test.astype(np.float32)]))


def test_nan_into_a_forest_trained_without_it_routes_like_sklearn(cf, diabetes, tmp_path):
    # scikit-learn 1.9 predicts NaN even for a forest fitted without it (by missing_go_to_left); serving
    # refuses such rows, but the predictor itself must still agree
    model, X = diabetes
    forest, _ = export_and_load(cf, model, tmp_path)
    rows = X[:80].copy()
    rows[np.arange(80), np.arange(80) % 10] = np.nan
    assert_bit_identical(model.predict(rows), forest.predict(rows))
    assert_bit_identical(model.predict(rows), np.array([forest.predict_row(r) for r in rows.astype(np.float32)]))


def test_stumps_and_single_leaf_trees(cf, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3))
    constant = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, np.full(50, 2.5))
    forest, summary = export_and_load(cf, constant, tmp_path)
    assert summary["max_depth"] == 0
    assert_bit_identical(constant.predict(X), forest.predict(X))
    assert_bit_identical(constant.predict(X[:3]), np.array([forest.predict_row(r) for r in X[:3].astype(np.float32)]))
    stumps = RandomForestRegressor(n_estimators=7, max_depth=1, random_state=0).fit(X, X[:, 0])
    forest, _ = export_and_load(cf, stumps, tmp_path)
    assert_bit_identical(stumps.predict(X), forest.predict(X))


@pytest.mark.parametrize("evaluator", ["pairs", "levels"])
def test_batch_evaluators_agree_for_any_chunking_and_thread_count(cf, diabetes, tmp_path, monkeypatch, evaluator):
    # GIVEN the diabetes forest, a 6,000-row batch with noise and some NaN, and tiny chunks so that
    # both batch evaluators cut it into many chunks and several worker threads share them
    model, X = diabetes
    forest, _ = export_and_load(cf, model, tmp_path)
    rng = np.random.default_rng(4)
    rows = X[rng.integers(len(X), size=6_000)] + rng.normal(0, 0.01, size=(6_000, X.shape[1]))
    with_nan = rows.copy()
    with_nan[rng.random(rows.shape) < 0.05] = np.nan
    monkeypatch.setattr(cf, "LEVELS_MIN_ROWS", 10**9 if evaluator == "pairs" else 0)
    monkeypatch.setattr(cf, "PAIRS_CHUNK", 100 * 170)  # 170 rows per all-trees chunk
    monkeypatch.setattr(cf, "CHUNK_ROWS", 700)
    monkeypatch.setattr(cf, "MIN_ROWS_PER_THREAD", 500)
    worker_threads = set()
    chunk_fn = "_sum_pairs" if evaluator == "pairs" else "_sum_chunk"
    original = getattr(forest, chunk_fn)

    def recording(*args):
        worker_threads.add(threading.current_thread().name)
        return original(*args)

    monkeypatch.setattr(forest, chunk_fn, recording)
    expected, expected_nan = model.predict(rows), model.predict(with_nan)
    # WHEN predicting with 1, 2 and 3 threads
    for threads in (1, 2, 3):
        worker_threads.clear()
        got, got_nan = forest.predict(rows, threads=threads), forest.predict(with_nan, threads=threads)
        # THEN every split gives scikit-learn's predictions bit for bit, and the work really was shared
        assert_bit_identical(expected, got)
        assert_bit_identical(expected_nan, got_nan)
        assert len(worker_threads) == threads, worker_threads


def test_thread_count_defaults_to_the_cpus_the_process_may_use(cf, diabetes, tmp_path, monkeypatch):
    model, _ = diabetes
    forest, _ = export_and_load(cf, model, tmp_path)
    assert forest.threads == cf.available_cpus() >= 1
    assert cf.CompactForest.load(tmp_path / "forest.npz", threads=3).threads == 3
    monkeypatch.setattr(cf, "cgroup_cpu_quota", lambda: 1)
    assert cf.available_cpus() == 1


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.max": "150000 100000\n"}, 2),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_cpu_quota(cf, tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cf.cgroup_cpu_quota(str(tmp_path)) == expected


def test_row_state_is_per_thread(cf, diabetes, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    model, X = diabetes
    forest, _ = export_and_load(cf, model, tmp_path)
    X32 = X.astype(np.float32)
    with ThreadPoolExecutor(4) as pool:
        got = np.array(list(pool.map(forest.predict_row, list(X32) * 3)))
    assert_bit_identical(np.tile(model.predict(X), 3), got)


def test_bad_files_are_refused(cf, diabetes, tmp_path):
    model, _ = diabetes
    path = tmp_path / "forest.npz"
    cf.export_forest(model, path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(tmp_path / "old.npz", **{**arrays, "format": np.array("greenlight-forest/0")})
    with pytest.raises(cf.ForestFormatError, match="not supported"):
        cf.CompactForest.load(tmp_path / "old.npz")
    np.savez(tmp_path / "short.npz", **{k: v for k, v in arrays.items() if k != "value"})
    with pytest.raises(cf.ForestFormatError, match="lacks arrays"):
        cf.CompactForest.load(tmp_path / "short.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(cf.ForestFormatError):
        cf.CompactForest.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "wild.npz", **{**arrays, "feature": arrays["feature"] + 50})
    with pytest.raises(cf.ForestFormatError, match="outside"):
        cf.CompactForest.load(tmp_path / "wild.npz")


def test_no_rows_give_no_predictions(cf, diabetes, tmp_path, monkeypatch):
    model, X = diabetes
    forest, _ = export_and_load(cf, model, tmp_path)
    empty = np.empty((0, X.shape[1]))
    assert forest.predict(empty).shape == (0,)
    assert {name: got.shape for name, got in forest.predict_each_way(empty).items()} == {
        "row_by_row": (0,), "all_trees": (0,), "tree_by_tree": (0,)}
    monkeypatch.setattr(cf, "SINGLE_ROW_LAYOUT_MAX_NODES", 0)
    assert cf.CompactForest.load(tmp_path / "forest.npz").predict(empty).shape == (0,)


def test_wrong_width_is_a_value_error(cf, diabetes, tmp_path):
    model, X = diabetes
    forest, _ = export_and_load(cf, model, tmp_path)
    with pytest.raises(ValueError, match="expected"):
        forest.predict(X[:, :9])


@pytest.mark.slow
def test_parity_on_a_large_deep_forest(cf, tmp_path, monkeypatch):
    # GIVEN a forest of deep trees on 100,000 rows x 20 features (fewer trees than production, same depth)
    X, y = make_regression(n_samples=100_000, n_features=20, noise=10.0, random_state=0)
    model = RandomForestRegressor(n_estimators=4, random_state=0, n_jobs=-1).fit(X, y)
    model.set_params(n_jobs=1)
    forest, summary = export_and_load(cf, model, tmp_path)
    assert summary["max_depth"] >= 30
    X_test, _ = make_regression(n_samples=20_000, n_features=20, noise=10.0, random_state=1)
    expected = model.predict(X_test)
    # THEN both batch evaluators (several chunks each) and the single-row path agree with scikit-learn
    assert_bit_identical(expected, forest.predict(X_test))
    monkeypatch.setattr(cf, "LEVELS_MIN_ROWS", 0)
    assert_bit_identical(expected, forest.predict(X_test))
    singles = np.array([forest.predict_row(x) for x in X_test[:300].astype(np.float32)])
    assert_bit_identical(expected[:300], singles)
    # AND with the row layout switched off (how forests above its node limit serve single rows)
    monkeypatch.setattr(cf, "SINGLE_ROW_LAYOUT_MAX_NODES", 0)
    big = cf.CompactForest.load(tmp_path / "forest.npz")
    assert big._single is None
    assert_bit_identical(expected[:50], np.array([big.predict_row(x) for x in X_test[:50].astype(np.float32)]))
