"""The compact forest predicts exactly what scikit-learn's RandomForestRegressor.predict does, bit for bit."""

from __future__ import annotations

import mmap
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_regression
from sklearn.ensemble import RandomForestRegressor

from tests.conftest import imported_src_modules

LAYOUTS = [True, False]  # with the row layout (small forests), and without (one row: the row walk)


@pytest.fixture(scope="module")
def mods():
    """src/ modules imported by bare name, as the containers do; forgotten afterwards."""
    with imported_src_modules(("compact_forest", "forest_files", "forest_rows", "forest_export")) as modules:
        yield modules


@pytest.fixture(scope="module")
def cf(mods):
    return mods.compact_forest


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    model = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=-1).fit(X, y)
    model.set_params(n_jobs=1)
    return model, X


def export_and_load(mods, model, tmp_path: Path, row_layout: bool | None = None, name: str = "forest"):
    directory = tmp_path / name
    manifest = mods.forest_export.export_forest(model, directory, row_layout=row_layout)
    return mods.compact_forest.CompactForest.load(directory), manifest


def assert_bit_identical(expected: np.ndarray, actual: np.ndarray) -> None:
    assert expected.dtype == actual.dtype == np.float64
    assert expected.shape == actual.shape
    mismatched = np.flatnonzero(expected.view(np.uint64) != actual.view(np.uint64))
    assert mismatched.size == 0, (f"{mismatched.size} rows differ, first {mismatched[:5]}: "
                                  f"{expected[mismatched[:5]]} vs {actual[mismatched[:5]]}")


def assert_every_evaluator(forest, expected: np.ndarray, X: np.ndarray, row_limit: int = 2_000) -> None:
    ways = forest.predict_each_way(X, row_limit=row_limit)
    assert tuple(ways) == forest.evaluators
    for name, got in ways.items():
        assert_bit_identical(expected[:got.size], got)
        assert got.size == min(row_limit, len(X)) if name in ("row_layout", "row_walk") else len(X)
    singles = np.array([forest.predict_row(x) for x in X[:row_limit].astype(np.float32)])
    assert_bit_identical(expected[:singles.size], singles)


def mapped(array: np.ndarray) -> bool:
    """Whether the array's memory is a file mapping (not a copy)."""
    while array is not None and not isinstance(array, mmap.mmap):
        array = getattr(array, "base", None)
    return array is not None


def test_export_files_and_manifest(mods, cf, diabetes, tmp_path):
    model, _ = diabetes
    forest, manifest = export_and_load(mods, model, tmp_path)
    nodes = sum(e.tree_.node_count for e in model.estimators_)
    assert {k: manifest[k] for k in ("format", "trees", "nodes", "max_depth", "n_features", "row_layout")} == {
        "format": "greenlight-forest/2", "trees": 100, "nodes": nodes,
        "max_depth": max(e.tree_.max_depth for e in model.estimators_), "n_features": 10, "row_layout": True}
    # every file written is listed, named forest.*, and the arrays are .npy files in serving's dtypes
    written = sorted(p.name for p in (tmp_path / "forest").iterdir())
    assert written == sorted(manifest["files"]) and all(name.startswith("forest.") for name in written)
    assert manifest["bytes"] == sum(np.load(tmp_path / "forest" / s["file"]).nbytes for s in manifest["arrays"].values())
    dtypes = {name: spec["dtype"] for name, spec in manifest["arrays"].items()}
    assert (dtypes["threshold"], dtypes["value"], dtypes["feature"], dtypes["child"]) == ("<f4", "<f8", "<i8", "<i8")
    assert (forest.n_trees, forest.n_features, forest.n_nodes) == (100, 10, nodes)
    # loading maps the files: no copy of the node arrays is made
    assert all(mapped(a) for a in (forest._feat, forest._thr, forest._child, forest._value, forest._nan_right))


def test_row_layout_is_stored_where_it_is_faster(mods, diabetes, tmp_path):
    rows = mods.forest_rows.RowLayout
    assert rows.pays(50_000, 10, 20) and not rows.pays(4_400_000, 10, 32) and not rows.pays(400_000, 40, 27)
    model, _ = diabetes
    assert export_and_load(mods, model, tmp_path, None)[0].evaluators == (
        "row_layout", "row_walk", "all_trees", "tree_by_tree")
    assert export_and_load(mods, model, tmp_path, False, "plain")[0].evaluators == (
        "row_walk", "all_trees", "tree_by_tree")


@pytest.mark.parametrize("row_layout", LAYOUTS)
def test_diabetes_parity_every_path(mods, cf, diabetes, tmp_path, monkeypatch, row_layout):
    # GIVEN the research model (100 trees on the diabetes data) and its compact export
    model, X = diabetes
    forest, _ = export_and_load(mods, model, tmp_path, row_layout)
    expected = model.predict(X)
    # WHEN predicting through every evaluator, and through predict at the batch sizes that pick them
    assert_every_evaluator(forest, expected, X)
    small = forest.predict(X[:20])
    one = np.concatenate([forest.predict(x) for x in X[:30]])
    monkeypatch.setattr(cf, "LEVELS_MIN_ROWS", 0)
    levels = forest.predict(X)
    # THEN every path is bit-identical to scikit-learn
    assert_bit_identical(expected[:20], small)
    assert_bit_identical(expected[:30], one)
    assert_bit_identical(expected, levels)


@pytest.mark.parametrize("row_layout", LAYOUTS)
def test_values_at_thresholds_follow_float32_comparison(mods, diabetes, tmp_path, row_layout):
    # GIVEN rows whose values sit on, just below and just above the float32 image of split thresholds,
    # and float64 values that only collapse onto a threshold once cast to float32
    model, X = diabetes
    forest, _ = export_and_load(mods, model, tmp_path, row_layout)
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
    # THEN the compact forest agrees with scikit-learn on every one, through every evaluator
    assert_every_evaluator(forest, model.predict(rows), rows, row_limit=300)


@pytest.mark.parametrize("row_layout", LAYOUTS)
def test_sum_order_matches_the_forest_loop(mods, tmp_path, row_layout):
    # GIVEN a forest whose leaf values span magnitudes, where the order of additions changes the last bit
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5))
    y = np.exp(rng.normal(scale=6, size=400)) * rng.choice([-1, 1], size=400)
    model = RandomForestRegressor(n_estimators=60, random_state=0, n_jobs=1).fit(X, y)
    forest, _ = export_and_load(mods, model, tmp_path, row_layout)
    expected = model.predict(X)
    per_tree = np.stack([e.predict(X.astype(np.float32)) for e in model.estimators_])
    # (a pairwise sum, what np.sum does along a contiguous axis, differs in some rows: the test can tell)
    assert (np.sum(per_tree.T.copy(), axis=1) / 60 != expected).any()
    # THEN the compact forest's tree-by-tree sum is exactly scikit-learn's
    assert_every_evaluator(forest, expected, X)


@pytest.mark.parametrize("row_layout", LAYOUTS)
def test_missing_values_follow_missing_go_to_left(mods, tmp_path, row_layout):
    # GIVEN a forest trained on data with NaN (scikit-learn routes NaN by missing_go_to_left)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, 6))
    y = X[:, 0] * 3 + np.where(np.isnan(X[:, 1]), 5.0, X[:, 1])
    X[rng.random(X.shape) < 0.2] = np.nan
    y = y + np.isnan(X[:, 2]) * 4.0
    model = RandomForestRegressor(n_estimators=30, random_state=0, n_jobs=1).fit(X, y)
    forest, _ = export_and_load(mods, model, tmp_path, row_layout)
    sends_nan = np.concatenate([e.tree_.missing_go_to_left[e.tree_.children_left >= 0] for e in model.estimators_])
    assert sends_nan.any() and not sends_nan.all()  # NaN goes left at some nodes and right at others
    # WHEN predicting rows with NaN in any feature, and rows without
    X_test = rng.normal(size=(300, 6))
    X_test[rng.random(X_test.shape) < 0.3] = np.nan
    # THEN every evaluator matches scikit-learn, NaN included
    assert_every_evaluator(forest, model.predict(X_test), X_test)


@pytest.mark.parametrize("row_layout", LAYOUTS)
def test_nan_into_a_forest_trained_without_it_routes_like_sklearn(mods, diabetes, tmp_path, row_layout):
    # scikit-learn 1.9 predicts NaN even for a forest fitted without it (by missing_go_to_left); serving
    # refuses such rows, but the predictor itself must still agree
    model, X = diabetes
    forest, _ = export_and_load(mods, model, tmp_path, row_layout)
    rows = X[:80].copy()
    rows[np.arange(80), np.arange(80) % 10] = np.nan
    assert_every_evaluator(forest, model.predict(rows), rows)


@pytest.mark.parametrize("row_layout", LAYOUTS)
def test_stumps_and_single_leaf_trees(mods, tmp_path, row_layout):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3))
    constant = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, np.full(50, 2.5))
    forest, manifest = export_and_load(mods, constant, tmp_path, row_layout)
    assert manifest["max_depth"] == 0
    assert_every_evaluator(forest, constant.predict(X), X)
    stumps = RandomForestRegressor(n_estimators=7, max_depth=1, random_state=0).fit(X, X[:, 0])
    forest, _ = export_and_load(mods, stumps, tmp_path, row_layout, "stumps")
    assert_every_evaluator(forest, stumps.predict(X), X)


@pytest.mark.parametrize("evaluator", ["pairs", "levels"])
def test_batch_evaluators_agree_for_any_chunking_and_thread_count(mods, cf, diabetes, tmp_path, monkeypatch, evaluator):
    # GIVEN the diabetes forest, a 6,000-row batch with noise and some NaN, and tiny chunks so that
    # both batch evaluators cut it into many chunks and several worker threads share them
    model, X = diabetes
    forest, _ = export_and_load(mods, model, tmp_path)
    rng = np.random.default_rng(4)
    rows = X[rng.integers(len(X), size=6_000)] + rng.normal(0, 0.01, size=(6_000, X.shape[1]))
    with_nan = rows.copy()
    with_nan[rng.random(rows.shape) < 0.05] = np.nan
    monkeypatch.setattr(cf, "LEVELS_MIN_ROWS", 10**9 if evaluator == "pairs" else 0)
    monkeypatch.setattr(cf, "PAIRS_CHUNK", 100 * 170)  # 170 rows per all-trees chunk
    monkeypatch.setattr(cf, "CHUNK_ROWS", 700)
    monkeypatch.setattr(cf, "THREADED_CHUNK_ROWS", 700)
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


@pytest.mark.parametrize("min_done", [0.0, 0.4, 1.0])
def test_rows_leaving_a_large_batch_early_change_no_prediction(mods, cf, tmp_path, monkeypatch, min_done):
    # GIVEN a forest trained with NaN (some splits have threshold +inf: not leaves) and fully grown trees,
    # and rows on a leaf leaving the arrays as soon as one is (0.0), at the default share, or only when
    # every row is on a leaf (1.0: the tree then stops)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3_000, 6))
    y = X[:, 0] * 3 + X[:, 1] ** 2
    X[rng.random(X.shape) < 0.1] = np.nan
    model = RandomForestRegressor(n_estimators=12, random_state=0, n_jobs=1).fit(X, y)
    forest, _ = export_and_load(mods, model, tmp_path, False)
    monkeypatch.setattr(cf, "COMPACT_MIN_DONE", min_done)
    X_test = rng.normal(size=(5_000, 6))
    X_test[rng.random(X_test.shape) < 0.05] = np.nan
    # THEN the large-batch evaluator matches scikit-learn either way
    assert_bit_identical(model.predict(X_test), forest.predict_each_way(X_test)["tree_by_tree"])
    X_root_nan = X_test.copy()
    X_root_nan[::7, :] = np.nan  # rows NaN in every column: the roots' own NaN direction decides level 0
    assert_bit_identical(model.predict(X_root_nan), forest.predict_each_way(X_root_nan)["tree_by_tree"])


class CountingRow(np.ndarray):
    """A float32 row that counts its `take` calls: the row walk gathers from the row once a level."""

    levels = 0

    def take(self, *args, **kwargs):
        type(self).levels += 1
        return np.asarray(self).take(*args, **kwargs)


def test_row_walk_stops_once_every_tree_is_on_a_leaf(mods, diabetes, tmp_path):
    # GIVEN the diabetes forest without its row layout (one row: the row walk), trees 12 to 20 deep
    model, X = diabetes
    forest, _ = export_and_load(mods, model, tmp_path, row_layout=False)
    walked = []
    # WHEN walking each row, counting the levels walked
    for x in X[:200].astype(np.float32):
        CountingRow.levels = 0
        forest._walk_row(x.view(CountingRow))
        walked.append(CountingRow.levels)
    # THEN rows whose trees are all on leaves before the deepest tree's depth stop there (one level
    # after the last move), never later than that depth, and the sums are scikit-learn's
    assert max(walked) <= forest.max_depth and min(walked) < forest.max_depth - 2
    assert_every_evaluator(forest, model.predict(X), X)


@pytest.mark.parametrize("nan", [False, True])
def test_narrow_index_forest_walks_rows_as_scikit_learn(mods, diabetes, tmp_path, monkeypatch, nan):
    # GIVEN the diabetes forest stored as a big forest is (int16 features, int32 children), the row
    # walk casting each level's node indices once
    model, X = diabetes
    monkeypatch.setattr(mods.forest_files, "WIDE_INDEX_MAX_NODES", 0)
    forest, manifest = export_and_load(mods, model, tmp_path, row_layout=False)
    assert (manifest["arrays"]["feature"]["dtype"], manifest["arrays"]["child"]["dtype"]) == ("<i2", "<i4")
    rows = X.copy()
    if nan:
        rows[np.random.default_rng(4).random(rows.shape) < 0.1] = np.nan
    # THEN every evaluator, the row walk included, is bit-identical to scikit-learn
    assert_every_evaluator(forest, model.predict(rows), rows)


def test_depth_limited_and_single_leaf_trees_walk_as_scikit_learn(mods, tmp_path):
    X, y = make_regression(n_samples=4_000, n_features=8, random_state=0)
    model = RandomForestRegressor(n_estimators=6, max_depth=6, random_state=0, n_jobs=1).fit(X, y)
    forest, _ = export_and_load(mods, model, tmp_path)
    assert_bit_identical(model.predict(X), forest.predict_each_way(X)["tree_by_tree"])
    stump = RandomForestRegressor(n_estimators=3, random_state=0, n_jobs=1).fit(X[:40], np.full(40, 2.5))
    forest, _ = export_and_load(mods, stump, tmp_path / "stump")  # every tree a single leaf (depth 0)
    assert_bit_identical(stump.predict(X), forest.predict_each_way(X)["tree_by_tree"])


def test_thread_count_defaults_to_one(mods, cf, diabetes, tmp_path, monkeypatch):
    model, _ = diabetes
    forest, _ = export_and_load(mods, model, tmp_path)
    assert forest.threads == 1 and cf.available_cpus() >= 1
    assert cf.CompactForest.load(tmp_path / "forest", threads=3).threads == 3
    forest.threads = 2
    assert forest.threads == 2
    forest.threads = None
    assert forest.threads == 1
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


def test_row_state_is_per_thread(mods, diabetes, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    model, X = diabetes
    forest, _ = export_and_load(mods, model, tmp_path)
    X32 = X.astype(np.float32)
    with ThreadPoolExecutor(4) as pool:
        got = np.array(list(pool.map(forest.predict_row, list(X32) * 3)))
    assert_bit_identical(np.tile(model.predict(X), 3), got)


def test_no_rows_give_no_predictions(mods, diabetes, tmp_path):
    model, X = diabetes
    empty = np.empty((0, X.shape[1]))
    for row_layout in LAYOUTS:
        forest, _ = export_and_load(mods, model, tmp_path, row_layout, f"f{row_layout}")
        assert forest.predict(empty).shape == (0,)
        assert {name: got.shape for name, got in forest.predict_each_way(empty).items()} == {
            name: (0,) for name in forest.evaluators}


def test_wrong_width_is_a_value_error(mods, diabetes, tmp_path):
    model, X = diabetes
    forest, _ = export_and_load(mods, model, tmp_path)
    with pytest.raises(ValueError, match="expected"):
        forest.predict(X[:, :9])


@pytest.mark.slow
def test_parity_on_a_large_deep_forest(mods, cf, tmp_path, monkeypatch):
    # GIVEN a forest of deep trees on 100,000 rows x 20 features (fewer trees than production, same depth)
    X, y = make_regression(n_samples=100_000, n_features=20, noise=10.0, random_state=0)
    model = RandomForestRegressor(n_estimators=4, random_state=0, n_jobs=-1).fit(X, y)
    model.set_params(n_jobs=1)
    forest, manifest = export_and_load(mods, model, tmp_path)
    assert manifest["max_depth"] >= 30 and not manifest["row_layout"]  # too big for the row layout to pay
    X_test, _ = make_regression(n_samples=20_000, n_features=20, noise=10.0, random_state=1)
    expected = model.predict(X_test)
    # THEN every evaluator (several chunks each for the batch ones) agrees with scikit-learn
    assert_every_evaluator(forest, expected, X_test, row_limit=300)
    assert_bit_identical(expected, forest.predict(X_test))
    monkeypatch.setattr(cf, "LEVELS_MIN_ROWS", 0)
    assert_bit_identical(expected, forest.predict(X_test))
    # AND with the row layout forced on (what a smaller forest of such trees would serve single rows with)
    rows, _ = export_and_load(mods, model, tmp_path, True, "rows")
    assert_bit_identical(expected[:300], np.array([rows.predict_row(x) for x in X_test[:300].astype(np.float32)]))


def generated(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Data as the serving benchmark generates it: standard normal features, a linear target plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    return X, X @ rng.uniform(-10, 10, features) + rng.normal(0, 1, rows)


def assert_parity_at_size(mods, model, tmp_path, X_test: np.ndarray) -> dict:
    forest, manifest = export_and_load(mods, model, tmp_path)
    expected = model.predict(X_test)
    assert_every_evaluator(forest, expected, X_test, row_limit=300)
    assert_bit_identical(expected, forest.predict(X_test))  # threads, as served
    with_nan = X_test[:2_000].copy()
    with_nan[np.random.default_rng(1).random(with_nan.shape) < 0.1] = np.nan
    assert_every_evaluator(forest, model.predict(with_nan), with_nan, row_limit=300)
    return manifest


@pytest.mark.slow
def test_parity_at_the_size_of_a_50k_row_csv(mods, tmp_path):
    # GIVEN the benchmark's second size: default hyperparameters (100 fully grown trees) on the 35,000
    # training rows of a generated 50,000 x 10 CSV: about 4.4 million nodes, too big for the row layout
    X, y = generated(50_000, 10)
    model = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=-1).fit(X[:35_000], y[:35_000])
    model.set_params(n_jobs=None)
    # THEN every evaluator, threads included, and NaN rows agree with scikit-learn bit for bit
    manifest = assert_parity_at_size(mods, model, tmp_path, X[35_000:45_000])
    assert manifest["nodes"] > 4_000_000 and not manifest["row_layout"]
    # big forests store the narrowest index types: 19 bytes a node
    assert (manifest["arrays"]["feature"]["dtype"], manifest["arrays"]["child"]["dtype"]) == ("<i2", "<i4")
    assert manifest["bytes"] < 19.01 * manifest["nodes"]


@pytest.mark.slow
def test_parity_on_a_wide_shallow_forest(mods, tmp_path):
    # GIVEN a stand-in for the benchmark's third size (500 trees, MaxDepth=12, 200,000 x 20): the same
    # shape of forest, many depth-limited trees on 20 features, on fewer rows and trees
    X, y = generated(25_000, 20, seed=1)
    model = RandomForestRegressor(n_estimators=100, max_depth=12, random_state=0, n_jobs=-1).fit(X[:15_000], y[:15_000])
    model.set_params(n_jobs=None)
    manifest = assert_parity_at_size(mods, model, tmp_path, X[15_000:])
    assert manifest["max_depth"] == 12 and not manifest["row_layout"]


def test_a_batch_transform_mini_batch_is_walked_as_one_chunk(mods, cf, diabetes, tmp_path, monkeypatch):
    # GIVEN the diabetes forest and the rows of one 6 MB mini-batch of a batch job (about 30,000 rows
    # of 10 features): each numpy call of the walk has a fixed cost, so a tree walks them all at once
    # (record 0055: smaller chunks cost the batch walk a quarter more CPU)
    model, X = diabetes
    forest, _ = export_and_load(mods, model, tmp_path)
    rows = X[np.random.default_rng(5).integers(len(X), size=31_000)]
    chunks = []
    original = forest._sum_chunk

    def recording(X32, acc):
        chunks.append(len(X32))
        return original(X32, acc)

    monkeypatch.setattr(forest, "_sum_chunk", recording)
    # WHEN it predicts them on one thread
    got = forest.predict(rows, threads=1)
    # THEN one chunk held every row, and the predictions are scikit-learn's
    assert chunks == [31_000]
    assert_bit_identical(model.predict(rows), got)
