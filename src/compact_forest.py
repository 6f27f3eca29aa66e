"""A Random Forest regressor as flat numpy arrays: exported at training, evaluated with numpy only.

`export_forest(model, path)` reads a fitted scikit-learn forest (duck-typed: `estimators_[i].tree_`)
and writes `forest.npz`; `CompactForest.load(path).predict(X)` needs numpy and nothing else, and
returns exactly what `RandomForestRegressor.predict(X)` returns, bit for bit:

- X is cast to float32 first, as scikit-learn does; a node sends x left when `x <= threshold`
  (threshold float64). For a float32 x that equals `x <= floor32(threshold)` (the largest float32
  not above it), so traversal runs in float32 with no rounding question.
- NaN follows `missing_go_to_left`, as in scikit-learn's `Tree.apply`.
- Per-tree leaf values (float64) are summed tree by tree from 0.0, then divided by the number of
  trees: the order of `sklearn.ensemble._forest._accumulate_prediction` with `n_jobs=1`.

Stored layout (format `greenlight-forest/1`): nodes of all trees concatenated, each tree renumbered
breadth-first so that an internal node's children are adjacent (`left`, `left + 1`); leaves have
`left == -1`. Two evaluators share it: a level-synchronous traversal per tree over row chunks (any
batch size), and for single rows a traversal whose comparisons are set per feature with one
`searchsorted` (internal nodes re-sorted by feature and threshold at load).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from pathlib import Path

import numpy as np

__all__ = ["FOREST_FORMAT", "FOREST_FILE", "CompactForest", "ForestFormatError", "export_forest"]

FOREST_FORMAT = "greenlight-forest/1"
FOREST_FILE = "forest.npz"
# Single rows use the per-feature comparison layout below this many nodes (its load-time build
# and per-row fill grow with the node count); bigger forests walk level by level.
SINGLE_ROW_LAYOUT_MAX_NODES = 500_000
CHUNK_ROWS = 16_384  # rows per traversal chunk: keeps a chunk's features in cache
SMALL_BATCH_ROWS = 64  # up to this many rows, row-by-row single-row traversal is faster


class ForestFormatError(ValueError):
    """The forest file is not a greenlight-forest/1 file, or is inconsistent."""


def export_forest(model, path: Path) -> dict:
    """Write a fitted single-output forest regressor to path (.npz); return a summary dict."""
    estimators = list(getattr(model, "estimators_", []))
    if not estimators:
        raise ForestFormatError("the model has no fitted estimators_")
    if int(getattr(model, "n_outputs_", 1)) != 1:
        raise ForestFormatError("only single-output regressors can be exported")
    parts = [_renumber(est.tree_) for est in estimators]
    sizes = np.array([len(p["value"]) for p in parts], dtype=np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    left = np.concatenate([np.where(p["left"] >= 0, p["left"] + r, -1) for p, r in zip(parts, roots, strict=True)])
    arrays = {
        "format": np.array(FOREST_FORMAT),
        "n_features": np.array(int(model.n_features_in_), dtype=np.int64),
        "roots": roots,
        "depths": np.array([est.tree_.max_depth for est in estimators], dtype=np.int64),
        "feature": np.concatenate([p["feature"] for p in parts]).astype(np.int32),
        "threshold": np.concatenate([p["threshold"] for p in parts]).astype(np.float64),
        "left": left.astype(np.int64),
        "value": np.concatenate([p["value"] for p in parts]).astype(np.float64),
        "missing_left": np.concatenate([p["missing_left"] for p in parts]).astype(np.bool_),
    }
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return {"format": FOREST_FORMAT, "trees": len(estimators), "nodes": int(sizes.sum()),
            "max_depth": int(arrays["depths"].max())}


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


def _floor32(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 threshold."""
    with np.errstate(over="ignore"):
        t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


class CompactForest:
    """A loaded forest; `predict(X)` equals scikit-learn's `predict` bit for bit."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        fmt = str(arrays.get("format", ""))
        if fmt != FOREST_FORMAT:
            raise ForestFormatError(f"forest format {fmt!r} is not supported (expected {FOREST_FORMAT!r})")
        self.n_features = int(arrays["n_features"])
        roots = arrays["roots"].astype(np.intp)
        depths = arrays["depths"].astype(np.intp)
        feature, threshold = arrays["feature"].astype(np.intp), arrays["threshold"].astype(np.float64)
        left, value = arrays["left"].astype(np.intp), arrays["value"].astype(np.float64)
        missing_left = arrays["missing_left"].astype(bool)
        n = value.size
        if not (feature.size == threshold.size == left.size == missing_left.size == n) or roots.size != depths.size:
            raise ForestFormatError("forest arrays have inconsistent lengths")
        leaf = left < 0
        internal = ~leaf
        if (left[internal] + 1 >= n).any() or (feature[internal] >= self.n_features).any() or (feature < 0).any():
            raise ForestFormatError("forest arrays point outside the forest")
        self.n_trees, self.n_nodes = int(roots.size), int(n)
        self.max_depth = int(depths.max()) if depths.size else 0
        self.has_missing_routing = bool(missing_left[internal].any())  # some NaN goes left somewhere
        self._roots, self._depths, self._value = roots, depths.tolist(), value
        # Level traversal records: next = base + go_right; a leaf loops on itself (threshold +inf).
        # 16 bytes each: numpy's take copies 16-byte items about five times faster than 17-byte ones.
        rec = np.empty(n, dtype=[("base", np.intp), ("thr", np.float32), ("feat", np.int32)])
        rec["base"] = np.where(leaf, np.arange(n), left)
        rec["thr"] = np.where(leaf, np.float32(np.inf), _floor32(threshold))
        rec["feat"] = feature
        self._rec = rec
        self._nan_right = internal & ~missing_left
        self._single = (_SingleRowLayout(rec, self._nan_right, leaf, self.n_features, roots, self.max_depth, value)
                        if n <= SINGLE_ROW_LAYOUT_MAX_NODES else None)

    @classmethod
    def load(cls, path: Path | str) -> "CompactForest":
        """Read a forest.npz written by export_forest. Raises: ForestFormatError, OSError."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (ValueError, KeyError, EOFError) as exc:
            raise ForestFormatError(f"cannot read {path}: {exc}") from exc
        missing = {"format", "n_features", "roots", "depths", "feature", "threshold", "left", "value",
                   "missing_left"} - arrays.keys()
        if missing:
            raise ForestFormatError(f"{path} lacks arrays {sorted(missing)}")
        return cls(arrays)

    def predict(self, X) -> np.ndarray:
        """Mean of the trees' predictions for each row of X (n_rows, n_features), as float64."""
        X = np.asarray(X)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}; expected (n_rows, {self.n_features})")
        with np.errstate(over="ignore", invalid="ignore"):
            X32 = np.ascontiguousarray(X, dtype=np.float32)
        n_rows = X32.shape[0]
        if n_rows <= SMALL_BATCH_ROWS and self._single is not None:
            out = np.empty(n_rows, dtype=np.float64)
            for i, row in enumerate(X32.tolist()):
                out[i] = self.predict_row(row)
            return out
        out = np.empty(n_rows, dtype=np.float64)
        for start in range(0, n_rows, CHUNK_ROWS):
            out[start:start + CHUNK_ROWS] = self._sum_chunk(X32[start:start + CHUNK_ROWS])
        return out / self.n_trees

    def predict_row(self, x32) -> float:
        """One row to its prediction: a float32 array, or a list of floats already rounded to float32."""
        if self._single is None:
            return float(self._sum_chunk(np.asarray(x32, dtype=np.float32).reshape(1, -1))[0] / self.n_trees)
        return self._single.leaf_sum(x32.tolist() if isinstance(x32, np.ndarray) else x32) / self.n_trees

    def _sum_chunk(self, X32: np.ndarray) -> np.ndarray:
        """Sum over trees (in tree order, from 0.0) of each row's leaf value."""
        k, nf = X32.shape
        flat = X32.ravel()
        offsets = np.arange(k, dtype=np.intp) * nf
        has_nan = bool(np.isnan(flat).any())
        acc = np.zeros(k, dtype=np.float64)
        rec, value, nan_right = self._rec, self._value, self._nan_right
        for root, depth in zip(self._roots.tolist(), self._depths, strict=True):
            node = np.full(k, root, dtype=np.intp)
            for _ in range(depth):
                r = rec.take(node)
                x = flat.take(offsets + r["feat"])
                go_right = x > r["thr"]
                if has_nan:
                    go_right |= np.isnan(x) & nan_right.take(node)
                node = r["base"] + go_right
            acc += value.take(node)
        return acc


class _SingleRowLayout:
    """Internal nodes re-numbered by (feature, threshold), so a row's go-right nodes are one prefix per feature.

    `nxt[i]` is the child a row takes at node i. A row finds each feature's prefix with `bisect` on
    that feature's sorted thresholds (float32 values held as Python floats: the comparison `t < x`
    is exact), rewrites only the parts of `nxt` that differ from the previous row of this thread,
    then walks `max_depth` steps of `node = nxt[node]`: one numpy call per level. Leaves point to
    themselves.
    """

    def __init__(self, rec: np.ndarray, nan_right: np.ndarray, leaf: np.ndarray, n_features: int,
                 roots: np.ndarray, max_depth: int, value: np.ndarray):
        n = leaf.size
        internal_ids = np.flatnonzero(~leaf)
        feat = rec["feat"][internal_ids].astype(np.intp)
        thr = rec["thr"][internal_ids]
        order = np.lexsort((thr, feat))
        old_of_new = np.concatenate([internal_ids[order], np.flatnonzero(leaf)])
        new_of_old = np.empty(n, dtype=np.intp)
        new_of_old[old_of_new] = np.arange(n)
        base = rec["base"][old_of_new]
        is_leaf = leaf[old_of_new]
        ids = np.arange(n, dtype=np.intp)
        self._left = np.where(is_leaf, ids, new_of_old[base])
        self._right = np.where(is_leaf, ids, new_of_old[np.where(is_leaf, 0, base + 1)])
        self._nan_child = np.where(nan_right[old_of_new], self._right, self._left)
        sorted_feat, sorted_thr = feat[order], thr[order]
        starts = np.searchsorted(sorted_feat, np.arange(n_features)).tolist()
        ends = np.searchsorted(sorted_feat, np.arange(n_features), "right").tolist()
        self._groups = [(g, a, b, sorted_thr[a:b].astype(np.float64).tolist())
                        for g, (a, b) in enumerate(zip(starts, ends, strict=True)) if b > a]
        self._roots = new_of_old[roots]
        self._value = value[old_of_new]
        self._steps = range(max_depth)
        self._local = threading.local()

    def _state(self) -> tuple[np.ndarray, dict]:
        """This thread's child table and, per feature, the prefix end it holds (None: unknown)."""
        state = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = (self._left.copy(), {g: a for g, a, _, _ in self._groups})
        return state

    def leaf_sum(self, xs: list[float]) -> float:
        """Sum, in tree order from 0.0, of the leaf values the trees give the row xs (float32 values)."""
        nxt, held = self._state()
        left, right = self._left, self._right
        for g, a, b, thresholds in self._groups:
            xv, was = xs[g], held[g]
            if xv != xv:  # NaN: each node's own missing-value direction
                nxt[a:b] = self._nan_child[a:b]
                held[g] = None
                continue
            cut = a + bisect_left(thresholds, xv)  # nodes with threshold < x go right
            if cut == was:
                continue
            if was is None:
                nxt[a:cut] = right[a:cut]
                nxt[cut:b] = left[cut:b]
            elif cut > was:
                nxt[was:cut] = right[was:cut]
            else:
                nxt[cut:was] = left[cut:was]
            held[g] = cut
        node = self._roots
        take = nxt.take
        for _ in self._steps:
            node = take(node)
        # Left-to-right running sum, like the forest's loop; + 0.0 turns a -0.0 total into the
        # +0.0 that a sum starting from 0.0 gives.
        return float(_accumulate(self._value.take(node))[-1]) + 0.0


_accumulate = np.add.accumulate
