"""Export a fitted scikit-learn forest regressor as the compact forest's files (at training; serving never imports it).

`export_forest(model, directory)` reads the forest duck-typed (`estimators_[i].tree_`), renumbers
each tree breadth-first so an internal node's children are adjacent, builds the arrays serving reads
(`forest_files.serving_arrays`: float32 floor thresholds, self-looping leaves, the row layout where
it pays) and writes them with their manifest (`forest_files.write_forest`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import forest_files
from forest_files import ForestFormatError

__all__ = ["export_forest"]


def export_forest(model, directory: Path, row_layout: bool | None = None) -> dict:
    """Write the forest's files into directory; return the manifest (with "files": every file written).

    row_layout: store the row layout (None: where it is faster for one row than the row walk).
    Raises: ForestFormatError (not a fitted single-output forest of trees).
    """
    estimators = list(getattr(model, "estimators_", []))
    if not estimators:
        raise ForestFormatError("the model has no fitted estimators_")
    if int(getattr(model, "n_outputs_", 1)) != 1:
        raise ForestFormatError("only single-output regressors can be exported")
    n_features = int(model.n_features_in_)
    parts = [_renumber(est.tree_) for est in estimators]
    sizes = np.array([len(p["value"]) for p in parts], dtype=np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    left = np.concatenate([np.where(p["left"] >= 0, p["left"] + r, -1) for p, r in zip(parts, roots, strict=True)])
    feature = np.concatenate([p["feature"] for p in parts])
    internal = left >= 0
    if (feature[internal] >= n_features).any() or (feature[internal] < 0).any():
        raise ForestFormatError("a split uses a feature the model does not have")
    arrays = forest_files.serving_arrays(
        feature, np.concatenate([p["threshold"] for p in parts]), left,
        np.concatenate([p["value"] for p in parts]), np.concatenate([p["missing_left"] for p in parts]),
        roots, np.array([est.tree_.max_depth for est in estimators], dtype=np.int64), n_features, row_layout)
    Path(directory).mkdir(parents=True, exist_ok=True)
    return forest_files.write_forest(Path(directory), arrays, n_features)


def _renumber(tree) -> dict[str, np.ndarray]:
    """One tree's nodes in breadth-first order with each node's two children adjacent."""
    cl, cr = np.asarray(tree.children_left), np.asarray(tree.children_right)
    n = int(tree.node_count)
    value = np.asarray(tree.value)
    if value.ndim != 3 or value.shape[1] != 1 or value.shape[2] != 1:
        raise ForestFormatError(f"tree values have shape {value.shape}; expected (nodes, 1, 1)")
    missing = getattr(tree, "missing_go_to_left", None)
    missing = np.zeros(n, dtype=bool) if missing is None else np.asarray(missing, dtype=bool)
    new_id = np.full(n, -1, dtype=np.int64)
    new_id[0] = 0
    next_id, frontier = 1, np.array([0], dtype=np.int64)
    while frontier.size:
        internal = frontier[cl[frontier] != -1]
        kids = np.empty(2 * internal.size, dtype=np.int64)
        kids[0::2], kids[1::2] = cl[internal], cr[internal]
        new_id[kids] = np.arange(next_id, next_id + kids.size)
        next_id += kids.size
        frontier = kids
    if next_id != n or (new_id < 0).any():
        raise ForestFormatError("tree has unreachable nodes")
    old = np.empty(n, dtype=np.int64)
    old[new_id] = np.arange(n)
    is_leaf = cl[old] == -1
    return {
        "feature": np.where(is_leaf, 0, np.asarray(tree.feature)[old]),
        "threshold": np.where(is_leaf, 0.0, np.asarray(tree.threshold)[old]),
        "left": np.where(is_leaf, -1, new_id[np.where(is_leaf, 0, cl[old])]),
        "value": value[old, 0, 0],
        "missing_left": np.where(is_leaf, False, missing[old]),
    }
