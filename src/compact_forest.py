"""A Random Forest regressor as flat numpy arrays, served with numpy alone, bit for bit scikit-learn's.

`forest_export.export_forest(model, directory)` writes the files at training time (forest_files.py
has the format); `CompactForest.load(directory)` maps them, and `predict(X)` returns exactly what
`RandomForestRegressor.predict(X)` returns:

- X is cast to float32 first, as scikit-learn does; a node sends x left when `x <= threshold`
  (threshold float64). For a float32 x that equals `x <= floor32(threshold)` (the largest float32
  not above it), so traversal runs in float32 with no rounding question.
- NaN follows `missing_go_to_left`, as in scikit-learn's `Tree.apply`.
- Per-tree leaf values (float64) are summed tree by tree from 0.0, then divided by the number of
  trees: the order of `sklearn.ensemble._forest._accumulate_prediction` with `n_jobs=1`.

Four evaluators, picked by batch size (`predict_each_way` runs every one this forest has):
ROW_LAYOUT (one row through the row layout of forest_rows.py, stored only where it is the faster),
ROW_WALK (one row, all trees walking together: a numpy call per field and level, so its cost grows
with the depth, not the node count), ALL_TREES (mid-sized batches: (tree, row) pairs level by
level) and TREE_BY_TREE (large batches: one tree at a time over row chunks, on threads). Batch
levels are seven numpy calls writing into per-chunk buffers (`out=`, `mode="wrap"`: indices are in
range, checked at load; a `take` into `out=` with the default `mode="raise"` copies, and
`mode="clip"` took about twice as long as "wrap" here). numpy releases the GIL inside each call,
so chunks may run on `threads` worker threads (default one; THREADS_DEFAULT says why); a row's sum
is computed inside one chunk in tree order, so the result does not depend on the thread count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from forest_files import (
    FILE_PATTERN,
    FOREST_FORMAT,
    LEGACY_FILE,
    LEGACY_FORMAT,
    MANIFEST_FILE,
    NODE_ARRAYS,
    READABLE_FORMATS,
    ForestFormatError,
    ForestIntegrityError,
    read_forest,
)
from forest_rows import RowLayout

__all__ = ["ALL_TREES", "FILE_PATTERN", "FOREST_FORMAT", "LEGACY_FILE", "LEGACY_FORMAT", "MANIFEST_FILE",
           "READABLE_FORMATS", "ROW_LAYOUT", "ROW_WALK", "TREE_BY_TREE", "CompactForest", "ForestFormatError",
           "ForestIntegrityError", "available_cpus"]

# Batch evaluators, chosen by batch size (crossovers measured at the three benchmarked model sizes,
# 2 cores, in CPU time; `python -m benchmarks serving` and BENCHMARKS.md):
SMALL_BATCH_ROWS = 24  # up to this many rows: one row at a time, when the forest has the row layout
# Below this many rows: all trees walk together over chunks of PAIRS_CHUNK (tree, row) pairs,
# seven numpy calls per level of the deepest tree rather than per level of every tree (call
# overhead dominates small batches); from it, one tree at a time (its nodes stay in cache). The
# crossover was near 1,000 rows on the 4-million-node forests and 3,000 on the default model.
LEVELS_MIN_ROWS = 2_000
PAIRS_CHUNK = 100_000
# One tree at a time over row chunks of up to CHUNK_ROWS rows. Once finished rows leave the arrays,
# the late levels walk few rows and the fixed cost of each numpy call dominates: 65,536-row chunks
# ran 1.3x faster than 8,192 on the default model and the 50,000-row one (record 0055; 0011's
# opposite finding predates the early leaving). Working arrays: about 120 bytes a row.
CHUNK_ROWS = 65_536
# ...and of up to THREADED_CHUNK_ROWS when several threads share a batch: each numpy call hands the
# GIL over, and 8,192-row calls are too short for two threads to gain anything (1 thread, 8,192:
# 204k rows/s on the default model; 2 threads, 8,192: 156k; 2 threads, 65,536: 199k).
THREADED_CHUNK_ROWS = 65_536
# From level COMPACT_FROM on, rows on a leaf leave a large batch's arrays as soon as at least
# COMPACT_MIN_DONE of the rows still walking are (the check is one comparison of arrays the level
# gathers anyway; leaving costs a gather of the rows that stay, so it waits for a large share).
COMPACT_FROM = 3
COMPACT_MIN_DONE = 0.4
# Threads a large batch uses unless told otherwise. One: on this project's shared 2-core machine a
# second thread pays only when the machine is idle (1.04x, 1.38x and 1.08x at the three benchmarked
# sizes; with other work running, slower at every size: each numpy call hands the GIL over, and a
# thread descheduled by other work holds the hand-over up), and serving runs where a second core is
# rarely free: Lambda and SageMaker Serverless give a fraction of a vCPU below 1,769 MB, and the
# SageMaker container and the local batch worker already run one process per CPU.
# GREENLIGHT_PREDICT_THREADS=auto (or N) for a dedicated host.
THREADS_DEFAULT = 1
# A levels worker thread gets at least this many rows: below it, the GIL hand-offs between numpy
# calls cost more than a second core gives (on 2 cores, 5,000-row halves ran at half one thread's speed).
MIN_ROWS_PER_THREAD = 10_000

# The evaluators' names (predict_each_way's keys).
ROW_LAYOUT, ROW_WALK, ALL_TREES, TREE_BY_TREE = "row_layout", "row_walk", "all_trees", "tree_by_tree"


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


# -- predicting ------------------------------------------------------------------------------------

class CompactForest:
    """A loaded forest; `predict(X)` equals scikit-learn's `predict` bit for bit.

    `threads` is how many threads a large batch may use (default 1; `available_cpus()` is how many
    this process may run on); set the attribute to change it for later calls, or pass `threads=` to
    one call.
    """

    def __init__(self, arrays: dict[str, np.ndarray], n_features: int, threads: int | None = None):
        self.n_features = int(n_features)
        roots, depths = arrays["roots"].astype(np.intp), arrays["depths"].astype(np.intp)
        n = arrays["value"].size
        if any(arrays[name].shape != (n,) for name in NODE_ARRAYS) or roots.shape != depths.shape:
            raise ForestFormatError("forest arrays have inconsistent lengths")
        self.n_trees, self.n_nodes = int(roots.size), int(n)
        self.max_depth = int(depths.max()) if depths.size else 0
        self._roots, self._depths, self._levels = roots, depths.tolist(), range(self.max_depth)
        self._feat, self._thr, self._child = arrays["feature"], arrays["threshold"], arrays["child"]
        self._value, self._nan_right = arrays["value"], arrays["nan_right"]
        self._narrow_child = self._child.dtype != np.intp
        # All-trees walk: trees deepest first, so the pairs still walking at level L are a prefix.
        by_depth = np.argsort(-depths, kind="stable")
        self._pairs_roots = roots[by_depth]
        self._pairs_tree_rank = np.argsort(by_depth, kind="stable")  # tree t's row in the deepest-first order
        depth_list = self._depths  # (Python, not a numpy sum: a first bool sum costs a process 2 MB of RSS)
        self._pairs_walking = [sum(d > level for d in depth_list) for level in range(self.max_depth)]
        self._threads = None if threads is None else max(1, int(threads))
        self._root_split = list(zip(arrays["feature"][roots].tolist(), arrays["threshold"][roots].tolist(),
                                    arrays["child"][roots].tolist(), arrays["nan_right"][roots].tolist(), strict=True))
        self._rows = RowLayout(arrays, self.n_features, self.max_depth) if "row_left" in arrays else None

    @classmethod
    def load(cls, path: Path | str, threads: int | None = None) -> "CompactForest":
        """Map a forest written by forest_files.write_forest (or read a legacy forest.npz); see `read_forest`.

        Raises: ForestFormatError, ForestIntegrityError, OSError.
        """
        return cls(*read_forest(path), threads=threads)

    @property
    def threads(self) -> int:
        """Threads a large batch may use: 1 unless set (see THREADS_DEFAULT)."""
        return THREADS_DEFAULT if self._threads is None else self._threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self._threads = None if value is None else max(1, int(value))

    @property
    def evaluators(self) -> tuple[str, ...]:
        """The evaluators this forest has (`predict_each_way`'s keys)."""
        return ((ROW_LAYOUT,) if self._rows is not None else ()) + (ROW_WALK, ALL_TREES, TREE_BY_TREE)

    def predict(self, X, threads: int | None = None) -> np.ndarray:
        """Mean of the trees' predictions for each row of X (n_rows, n_features), as float64.

        Batches above MIN_ROWS_PER_THREAD rows are split over up to `threads` threads (default:
        the `threads` attribute); the result is the same for any thread count.
        """
        X32 = self._float32(X)
        n_rows = X32.shape[0]
        if n_rows == 1 or (n_rows <= SMALL_BATCH_ROWS and self._rows is not None):
            return self._row_by_row(X32, ROW_LAYOUT if self._rows is not None else ROW_WALK)
        return self._batch(X32, ALL_TREES if n_rows < LEVELS_MIN_ROWS else TREE_BY_TREE, threads)

    def predict_each_way(self, X, row_limit: int = 2_000) -> dict[str, np.ndarray]:
        """X's predictions from every evaluator this forest has, for parity checks.

        Keys: `evaluators`; the one-row evaluators get the first row_limit rows, the others every row.
        """
        X32 = self._float32(X)
        return {name: self._row_by_row(X32[:row_limit], name) if name in (ROW_LAYOUT, ROW_WALK)
                else self._batch(X32, name, None) for name in self.evaluators}

    def predict_row(self, x32) -> float:
        """One row to its prediction: a float32 array, or a list of floats already rounded to float32."""
        if self._rows is not None:
            return self._rows.leaf_sum(x32.tolist() if isinstance(x32, np.ndarray) else x32) / self.n_trees
        return self._walk_row(np.asarray(x32, dtype=np.float32).reshape(-1)) / self.n_trees

    def _float32(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}; expected (n_rows, {self.n_features})")
        with np.errstate(over="ignore", invalid="ignore"):
            return np.ascontiguousarray(X, dtype=np.float32)

    def _row_by_row(self, X32: np.ndarray, evaluator: str) -> np.ndarray:
        one: Callable[[Any], float]
        if evaluator == ROW_LAYOUT:
            if self._rows is None:
                raise ValueError(f"evaluator {ROW_LAYOUT!r}: this forest has no row layout")
            one, rows = self._rows.leaf_sum, X32.tolist()
        else:
            one, rows = self._walk_row, X32
        out = np.empty(X32.shape[0], dtype=np.float64)
        for i, row in enumerate(rows):
            out[i] = one(row)
        out /= self.n_trees
        return out

    def _walk_row(self, x: np.ndarray) -> float:
        """Sum, in tree order from 0.0, of one row's leaf values: all trees walk together, a call per field a level.

        The walk stops at the first level that moves no tree (a leaf is its own child, so every tree
        is on its leaf): one byte comparison a level, against whole levels left to walk. A row of
        the 50,000 x 10 benchmark model (trees 26 to 32 deep) has every tree on a leaf by level 23
        at the median.
        """
        node, intp = self._roots, np.intp
        feature, threshold, child, xs = self._feat.take, self._thr.take, self._child.take, x.take
        before = node.tobytes()
        if np.isnan(x).any():  # NaN > t is False (left); nodes trained to send NaN right say so
            nan_right = self._nan_right.take
            for _ in self._levels:
                v = xs(feature(node))
                node = (child(node) + ((v > threshold(node)) | (nan_right(node) & (v != v)))).astype(intp)
                if before == (before := node.tobytes()):
                    break
        elif self._narrow_child:
            # An int32 child table (forests beyond WIDE_INDEX_MAX_NODES nodes): the level's node
            # indices cast to intp once, not inside each of the level's three `take`s.
            for _ in self._levels:
                node = (child(node) + (xs(feature(node)) > threshold(node))).astype(intp)
                if before == (before := node.tobytes()):
                    break
        else:
            for _ in self._levels:
                node = child(node) + (xs(feature(node)) > threshold(node))
                if before == (before := node.tobytes()):
                    break
        # Left-to-right running sum, like the forest's loop; + 0.0 turns a -0.0 total into the
        # +0.0 that a sum starting from 0.0 gives.
        return float(_accumulate(self._value.take(node))[-1]) + 0.0

    def _batch(self, X32: np.ndarray, evaluator: str, threads: int | None) -> np.ndarray:
        n_rows = X32.shape[0]
        out = np.empty(n_rows, dtype=np.float64)
        threads = self.threads if threads is None else max(1, int(threads))
        if evaluator == ALL_TREES:
            size, work = max(1, PAIRS_CHUNK // max(1, self.n_trees)), self._sum_pairs
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

    def _sum_chunk(self, X32: np.ndarray, acc: np.ndarray) -> np.ndarray:
        """Sum over trees (in tree order, from 0.0) of each row's leaf value, written into acc.

        Level 0 compares one column of X with the root's threshold (every row is at the root). From
        COMPACT_FROM on, rows already on a leaf leave the arrays (their node is kept in `final`) once
        at least COMPACT_MIN_DONE of the walking rows are; a tree whose rows are all on leaves stops.
        Only the work shrinks: each row still adds its leaf values in tree order.
        """
        k, nf = X32.shape
        flat = X32.ravel()
        all_offsets = np.arange(k, dtype=np.intp) * nf
        has_nan = bool(np.isnan(flat).any())
        nan_columns = [np.isnan(X32[:, j]) for j in range(nf)] if has_nan else None
        acc.fill(0.0)
        buffers: tuple[np.ndarray, ...] = (np.empty(k, np.intp), np.empty(k, self._feat.dtype),
                                           np.empty(k, np.float32),
                                           np.empty(k, np.float32), np.empty(k, np.bool_), np.empty(k, np.bool_),
                                           np.empty(k, self._child.dtype))
        node_buffer, final, leafv = np.empty(k, np.intp), np.empty(k, np.intp), np.empty(k, np.float64)
        add, greater, equal, count = np.add, np.greater, np.equal, np.count_nonzero
        feat_of, thr_of, child_of, nan_right = self._feat, self._thr, self._child, self._nan_right
        min_done = COMPACT_MIN_DONE
        for (f0, t0, c0, nan0), depth in zip(self._root_split, self._depths, strict=True):
            node, offsets, rows, m = node_buffer, all_offsets, None, k  # rows: where the walking rows are
            idx, feats, x, thr, go_right, nan_go, kids = buffers
            if depth == 0:  # a single leaf: its root
                node.fill(c0)
            else:
                greater(X32[:, f0], t0, out=go_right)
                if nan_columns is not None and nan0:  # nan_columns: only when X has a NaN
                    np.logical_or(go_right, nan_columns[f0], out=go_right)
                add(go_right, c0, out=node)
            for level in range(1, depth):
                child_of.take(node, out=kids, mode="wrap")
                if level >= COMPACT_FROM:
                    equal(kids, node, out=go_right)  # a leaf is its own child (a split on NaN has t = +inf)
                    done = count(go_right)
                    if done and done >= min_done * m:
                        if done == m:
                            break
                        walking = np.flatnonzero(~go_right)
                        if rows is None:
                            final[:] = node
                            rows = walking
                        else:
                            final[rows] = node
                            rows = rows.take(walking)
                        m = walking.size
                        node, offsets = node.take(walking), offsets.take(walking)
                        idx, feats, x, thr, go_right, nan_go, kids = (b[:m] for b in buffers)
                        child_of.take(node, out=kids, mode="wrap")
                feat_of.take(node, out=feats, mode="wrap")
                add(feats, offsets, out=idx)
                flat.take(idx, out=x, mode="wrap")
                thr_of.take(node, out=thr, mode="wrap")
                greater(x, thr, out=go_right)
                if has_nan:  # NaN > t is False (left); nodes trained to send NaN right say so
                    nan_right.take(node, out=nan_go, mode="wrap")
                    np.logical_and(nan_go, np.isnan(x), out=nan_go)
                    np.logical_or(go_right, nan_go, out=go_right)
                add(kids, go_right, out=node)
            if rows is not None:
                final[rows] = node
                node = final
            self._value.take(node, out=leafv, mode="wrap")
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
        idx = np.empty(n_pairs, np.intp)
        feats, kids = np.empty(n_pairs, self._feat.dtype), np.empty(n_pairs, self._child.dtype)
        x, thr = np.empty(n_pairs, np.float32), np.empty(n_pairs, np.float32)
        go_right, nan_go = np.empty(n_pairs, np.bool_), np.empty(n_pairs, np.bool_)
        add, greater = np.add, np.greater
        feat_of, thr_of, child_of, nan_right = self._feat, self._thr, self._child, self._nan_right
        for walking in self._pairs_walking:
            m = walking * k  # pairs of trees deeper than this level; the rest sit on their leaves
            nd, ix, xv, th, gr = node[:m], idx[:m], x[:m], thr[:m], go_right[:m]
            feat_of.take(nd, out=feats[:m], mode="wrap")
            add(feats[:m], offsets[:m], out=ix)
            flat.take(ix, out=xv, mode="wrap")
            thr_of.take(nd, out=th, mode="wrap")
            greater(xv, th, out=gr)
            if has_nan:
                ng = nan_go[:m]
                nan_right.take(nd, out=ng, mode="wrap")
                np.logical_and(ng, np.isnan(xv), out=ng)
                np.logical_or(gr, ng, out=gr)
            child_of.take(nd, out=kids[:m], mode="wrap")
            add(kids[:m], gr, out=nd)
        leaf_values = self._value.take(node).reshape(self.n_trees, k)
        acc.fill(0.0)
        for rank in self._pairs_tree_rank.tolist():  # tree order, from 0.0, as the forest sums
            add(acc, leaf_values[rank], out=acc)
        return acc


def _piece_rows(n_rows: int, workers: int) -> int:
    """Rows per chunk: at most CHUNK_ROWS (THREADED_CHUNK_ROWS on threads); the chunk count a multiple of workers."""
    pieces = max(workers, math.ceil(n_rows / (CHUNK_ROWS if workers == 1 else THREADED_CHUNK_ROWS)))
    pieces = math.ceil(pieces / workers) * workers
    return max(1, math.ceil(n_rows / pieces))


_accumulate = np.add.accumulate
