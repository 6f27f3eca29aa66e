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
`left == -1`. Three evaluators share it, picked by batch size (`predict_each_way` runs all three):
single rows walk a layout whose comparisons are set per feature with one `bisect` (internal nodes
re-sorted by feature and threshold at load); mid-sized batches walk all trees at once, level by
level, over chunks of (tree, row) pairs; large batches walk one tree at a time over row chunks.

Batches: each level of the traversal is seven numpy calls writing into per-chunk buffers (`out=`,
`mode="clip"`: indices are in range by construction, checked at load, and a `take` into `out=`
with the default `mode="raise"` is about 25x slower). numpy releases the GIL inside each call, so
chunks run on `threads` worker threads (default: the CPUs this process may use); a row's sum is
computed inside one chunk in tree order, so the result does not depend on the thread count.
"""

from __future__ import annotations

import math
import os
import threading
from bisect import bisect_left
from pathlib import Path

import numpy as np

__all__ = ["FOREST_FORMAT", "FOREST_FILE", "CompactForest", "ForestFormatError", "available_cpus", "export_forest"]

FOREST_FORMAT = "greenlight-forest/1"
FOREST_FILE = "forest.npz"
# Single rows use the per-feature comparison layout below this many nodes (its load-time build
# and per-row fill grow with the node count); bigger forests walk level by level.
SINGLE_ROW_LAYOUT_MAX_NODES = 500_000
# Batch evaluators, chosen by batch size (crossovers measured on the default model, 2 cores;
# `python -m benchmarks serving` and BENCHMARKS.md):
SMALL_BATCH_ROWS = 24  # up to this many rows: one row at a time through the single-row layout
# Below this many rows: all trees walk together over chunks of PAIRS_CHUNK (tree, row) pairs,
# seven numpy calls per level of the deepest tree rather than per level of every tree, so call
# overhead stays small while the arrays (about 41 bytes a pair) stay in cache.
LEVELS_MIN_ROWS = 50_000
PAIRS_CHUNK = 100_000
# From LEVELS_MIN_ROWS rows: one tree at a time over row chunks of up to CHUNK_ROWS rows, which
# keeps one tree's nodes in cache (and is the only sane layout for forests of millions of nodes).
CHUNK_ROWS = 65_536
# A levels worker thread gets at least this many rows: below it, the GIL hand-offs between numpy
# calls cost more than a second core gives (on 2 cores, 5,000-row halves ran at half one thread's speed).
MIN_ROWS_PER_THREAD = 10_000


# The evaluators' names (predict_each_way's keys).
ROW_BY_ROW, ALL_TREES, TREE_BY_TREE = "row_by_row", "all_trees", "tree_by_tree"


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


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota if one is set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, quota) if quota else cpus)


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> int | None:
    """ceil(quota / period) from cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us`; None when unlimited or unknown."""
    try:
        with open(f"{root}/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
    except (OSError, ValueError):
        try:
            with open(f"{root}/cpu/cpu.cfs_quota_us") as fq, open(f"{root}/cpu/cpu.cfs_period_us") as fp:
                quota, period = fq.read().strip(), fp.read().strip()
        except OSError:
            return None
    try:
        q, p = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    return math.ceil(q / p) if q > 0 and p > 0 else None


class CompactForest:
    """A loaded forest; `predict(X)` equals scikit-learn's `predict` bit for bit.

    `threads` is how many threads a large batch may use (default: `available_cpus()`); set the
    attribute to change it for later calls, or pass `threads=` to one call.
    """

    def __init__(self, arrays: dict[str, np.ndarray], threads: int | None = None):
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
        if ((left[internal] + 1 >= n).any() or (feature[internal] >= self.n_features).any() or (feature < 0).any()
                or (roots < 0).any() or (roots >= n).any() or (depths < 0).any()):
            raise ForestFormatError("forest arrays point outside the forest")
        self.n_trees, self.n_nodes = int(roots.size), int(n)
        self.max_depth = int(depths.max()) if depths.size else 0
        self.has_missing_routing = bool(missing_left[internal].any())  # some NaN goes left somewhere
        self._roots, self._depths, self._value = roots, depths.tolist(), value
        # All-trees walk: trees deepest first, so the pairs still walking at level L are a prefix.
        by_depth = np.argsort(-depths, kind="stable")
        self._pairs_roots = roots[by_depth]
        self._pairs_tree_rank = np.argsort(by_depth, kind="stable")  # tree t's row in the deepest-first order
        self._pairs_walking = [int((depths > level).sum()) for level in range(self.max_depth)]
        self._threads = None if threads is None else max(1, int(threads))
        # Level traversal, one contiguous array per field (numpy's contiguous loops are several
        # times faster than strided ones over a record): next = base + go_right; a leaf loops on
        # itself (threshold +inf, which no float32 exceeds).
        self._base = np.where(leaf, np.arange(n), left).astype(np.intp)
        self._thr = np.where(leaf, np.float32(np.inf), _floor32(threshold)).astype(np.float32)
        self._feat = np.where(leaf, 0, feature).astype(np.intp)
        self._nan_right = internal & ~missing_left
        self._single = (_SingleRowLayout(self._base, self._thr, self._feat, self._nan_right, leaf, self.n_features,
                                         roots, self.max_depth, value)
                        if n <= SINGLE_ROW_LAYOUT_MAX_NODES else None)

    @property
    def threads(self) -> int:
        """Threads a large batch may use; unless set, `available_cpus()`, read on first use (not on a cold start)."""
        if self._threads is None:
            self._threads = available_cpus()
        return self._threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self._threads = None if value is None else max(1, int(value))

    @classmethod
    def load(cls, path: Path | str, threads: int | None = None) -> "CompactForest":
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
        return cls(arrays, threads=threads)

    def predict(self, X, threads: int | None = None) -> np.ndarray:
        """Mean of the trees' predictions for each row of X (n_rows, n_features), as float64.

        Batches above MIN_ROWS_PER_THREAD rows are split over up to `threads` threads (default:
        the `threads` attribute); the result is the same for any thread count.
        """
        X32 = self._float32(X)
        n_rows = X32.shape[0]
        if n_rows <= SMALL_BATCH_ROWS and self._single is not None:
            return self._row_by_row(X32)
        return self._batch(X32, ALL_TREES if n_rows < LEVELS_MIN_ROWS else TREE_BY_TREE, threads)

    def predict_each_way(self, X, row_limit: int = 2_000) -> dict[str, np.ndarray]:
        """X's predictions from every evaluator `predict` can pick, for parity checks.

        Keys: ALL_TREES and TREE_BY_TREE (every row), ROW_BY_ROW (the first row_limit rows).
        """
        X32 = self._float32(X)
        return {ROW_BY_ROW: self._row_by_row(X32[:row_limit]), ALL_TREES: self._batch(X32, ALL_TREES, None),
                TREE_BY_TREE: self._batch(X32, TREE_BY_TREE, None)}

    def _float32(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}; expected (n_rows, {self.n_features})")
        with np.errstate(over="ignore", invalid="ignore"):
            return np.ascontiguousarray(X, dtype=np.float32)

    def _row_by_row(self, X32: np.ndarray) -> np.ndarray:
        out = np.empty(X32.shape[0], dtype=np.float64)
        for i, row in enumerate(X32.tolist()):
            out[i] = self.predict_row(row)
        return out

    def _batch(self, X32: np.ndarray, evaluator: str, threads: int | None) -> np.ndarray:
        n_rows = X32.shape[0]
        out = np.empty(n_rows, dtype=np.float64)
        threads = self.threads if threads is None else max(1, int(threads))
        if evaluator == ALL_TREES:
            size, work = max(1, PAIRS_CHUNK // self.n_trees), self._sum_pairs
            workers = max(1, min(threads, math.ceil(n_rows / size)))
        else:
            workers = max(1, min(threads, n_rows // MIN_ROWS_PER_THREAD))
            size, work = _piece_rows(n_rows, workers), self._sum_chunk

        def run(start: int) -> None:
            work(X32[start:start + size], out[start:start + size])

        starts = range(0, n_rows, size)
        if workers == 1:
            for start in starts:
                run(start)
        else:
            # Imported here: concurrent.futures costs about 14 ms, a cold start pays it only if it needs it.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers, thread_name_prefix="greenlight-forest") as pool:
                for _ in pool.map(run, starts):
                    pass
        out /= self.n_trees
        return out

    def predict_row(self, x32) -> float:
        """One row to its prediction: a float32 array, or a list of floats already rounded to float32."""
        if self._single is None:
            return float(self._sum_chunk(np.asarray(x32, dtype=np.float32).reshape(1, -1))[0] / self.n_trees)
        return self._single.leaf_sum(x32.tolist() if isinstance(x32, np.ndarray) else x32) / self.n_trees

    def _sum_chunk(self, X32: np.ndarray, acc: np.ndarray | None = None) -> np.ndarray:
        """Sum over trees (in tree order, from 0.0) of each row's leaf value, written into acc."""
        k, nf = X32.shape
        flat = X32.ravel()
        offsets = np.arange(k, dtype=np.intp) * nf
        has_nan = bool(np.isnan(flat).any())
        if acc is None:
            acc = np.empty(k, dtype=np.float64)
        acc.fill(0.0)
        node, idx, bases = np.empty(k, np.intp), np.empty(k, np.intp), np.empty(k, np.intp)
        x, thr, leafv = np.empty(k, np.float32), np.empty(k, np.float32), np.empty(k, np.float64)
        go_right, nan_go = np.empty(k, np.bool_), np.empty(k, np.bool_)
        take, add, greater = np.take, np.add, np.greater
        feat_of, thr_of, base_of, value, nan_right = self._feat, self._thr, self._base, self._value, self._nan_right
        for root, depth in zip(self._roots.tolist(), self._depths, strict=True):
            node.fill(root)
            for _ in range(depth):
                take(feat_of, node, out=idx, mode="clip")
                add(idx, offsets, out=idx)
                take(flat, idx, out=x, mode="clip")
                take(thr_of, node, out=thr, mode="clip")
                greater(x, thr, out=go_right)
                if has_nan:  # NaN > t is False (left); nodes trained to send NaN right say so
                    take(nan_right, node, out=nan_go, mode="clip")
                    np.logical_and(nan_go, np.isnan(x), out=nan_go)
                    np.logical_or(go_right, nan_go, out=go_right)
                take(base_of, node, out=bases, mode="clip")
                add(bases, go_right, out=node)
            take(value, node, out=leafv, mode="clip")
            add(acc, leafv, out=acc)
        return acc

    def _sum_pairs(self, X32: np.ndarray, acc: np.ndarray) -> np.ndarray:
        """_sum_chunk's result with all trees walking at once: one array of (tree, row) pairs, trees deepest first."""
        k, nf = X32.shape
        flat = X32.ravel()
        n_pairs = k * self.n_trees
        has_nan = bool(np.isnan(flat).any())
        node = np.repeat(self._pairs_roots, k)
        offsets = np.tile(np.arange(k, dtype=np.intp) * nf, self.n_trees)
        idx, bases = np.empty(n_pairs, np.intp), np.empty(n_pairs, np.intp)
        x, thr = np.empty(n_pairs, np.float32), np.empty(n_pairs, np.float32)
        go_right, nan_go = np.empty(n_pairs, np.bool_), np.empty(n_pairs, np.bool_)
        take, add, greater = np.take, np.add, np.greater
        feat_of, thr_of, base_of, nan_right = self._feat, self._thr, self._base, self._nan_right
        for walking in self._pairs_walking:
            m = walking * k  # pairs of trees deeper than this level; the rest sit on their leaves
            nd, ix, xv, th, gr, bs = node[:m], idx[:m], x[:m], thr[:m], go_right[:m], bases[:m]
            take(feat_of, nd, out=ix, mode="clip")
            add(ix, offsets[:m], out=ix)
            take(flat, ix, out=xv, mode="clip")
            take(thr_of, nd, out=th, mode="clip")
            greater(xv, th, out=gr)
            if has_nan:
                ng = nan_go[:m]
                take(nan_right, nd, out=ng, mode="clip")
                np.logical_and(ng, np.isnan(xv), out=ng)
                np.logical_or(gr, ng, out=gr)
            take(base_of, nd, out=bs, mode="clip")
            add(bs, gr, out=nd)
        leaf_values = self._value.take(node).reshape(self.n_trees, k)
        acc.fill(0.0)
        for rank in self._pairs_tree_rank.tolist():  # tree order, from 0.0, as the forest sums
            add(acc, leaf_values[rank], out=acc)
        return acc


def _piece_rows(n_rows: int, workers: int) -> int:
    """Rows per chunk: at most CHUNK_ROWS, and a chunk count that is a multiple of workers."""
    pieces = max(workers, math.ceil(n_rows / CHUNK_ROWS))
    pieces = math.ceil(pieces / workers) * workers
    return max(1, math.ceil(n_rows / pieces))


class _SingleRowLayout:
    """Internal nodes re-numbered by (feature, threshold), so a row's go-right nodes are one prefix per feature.

    `nxt[i]` is the child a row takes at node i. A row finds each feature's prefix with `bisect` on
    that feature's sorted thresholds (float32 values held as Python floats: the comparison `t < x`
    is exact), rewrites only the parts of `nxt` that differ from the previous row of this thread,
    then walks `max_depth` steps of `node = nxt[node]`: one numpy call per level. Leaves point to
    themselves.
    """

    def __init__(self, base_of: np.ndarray, thr_of: np.ndarray, feat_of: np.ndarray, nan_right: np.ndarray,
                 leaf: np.ndarray, n_features: int, roots: np.ndarray, max_depth: int, value: np.ndarray):
        n = leaf.size
        internal_ids = np.flatnonzero(~leaf)
        feat = feat_of[internal_ids]
        thr = thr_of[internal_ids]
        order = np.lexsort((thr, feat))
        old_of_new = np.concatenate([internal_ids[order], np.flatnonzero(leaf)])
        new_of_old = np.empty(n, dtype=np.intp)
        new_of_old[old_of_new] = np.arange(n)
        base = base_of[old_of_new]
        is_leaf = leaf[old_of_new]
        ids = np.arange(n, dtype=np.intp)
        self._left = np.where(is_leaf, ids, new_of_old[base])
        self._right = np.where(is_leaf, ids, new_of_old[np.where(is_leaf, 0, base + 1)])
        self._nan_child = np.where(nan_right[old_of_new], self._right, self._left)
        self._left_view, self._right_view = memoryview(self._left), memoryview(self._right)
        self._nan_child_view = memoryview(self._nan_child)
        sorted_feat, sorted_thr = feat[order], thr[order]
        starts = np.searchsorted(sorted_feat, np.arange(n_features)).tolist()
        ends = np.searchsorted(sorted_feat, np.arange(n_features), "right").tolist()
        self._groups = [(g, a, b, sorted_thr[a:b].astype(np.float64).tolist())
                        for g, (a, b) in enumerate(zip(starts, ends, strict=True)) if b > a]
        self._roots = new_of_old[roots]
        self._value = value[old_of_new]
        self._steps = range(max_depth)
        self._local = threading.local()

    def _state(self) -> tuple[np.ndarray, memoryview, dict]:
        """This thread's child table (array and memoryview of it) and, per feature, the prefix end it holds."""
        state = getattr(self._local, "state", None)
        if state is None:
            nxt = self._left.copy()
            state = self._local.state = (nxt, memoryview(nxt), {g: a for g, a, _, _ in self._groups})
        return state

    def leaf_sum(self, xs: list[float]) -> float:
        """Sum, in tree order from 0.0, of the leaf values the trees give the row xs (float32 values)."""
        nxt_array, nxt, held = self._state()
        # Rewrites go through memoryviews: a memoryview slice copy costs a fraction of a numpy
        # slice assignment's call overhead, and a row makes one or two per feature.
        left, right = self._left_view, self._right_view
        for g, a, b, thresholds in self._groups:
            xv, was = xs[g], held[g]
            if xv != xv:  # NaN: each node's own missing-value direction
                nxt[a:b] = self._nan_child_view[a:b]
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
        take = nxt_array.take
        for _ in self._steps:
            node = take(node)
        # Left-to-right running sum, like the forest's loop; + 0.0 turns a -0.0 total into the
        # +0.0 that a sum starting from 0.0 gives.
        return float(_accumulate(self._value.take(node))[-1]) + 0.0


_accumulate = np.add.accumulate
