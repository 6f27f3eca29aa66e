"""The row layout: one row through a small forest with one numpy call per level (compact_forest's ROW_LAYOUT).

Leaves come first (in node order), then internal nodes sorted by (feature, threshold), so the nodes
a row sends right are, for each feature, one contiguous run: those whose threshold is below the
row's value, found with one `bisect` on that feature's sorted thresholds (float32 values read as
Python floats: the comparison `t < x` is exact). `nxt[i]` is the child the current row takes at
node i; a row rewrites only the runs that differ from the previous row of its thread, then walks
`max_depth` steps of `node = nxt[node]` for all trees at once. Leaves point to themselves.

Its cost per row grows with the node count (the rewrite) and the feature count (the bisects), the
row walk's with the depth, so an export stores the layout only where it is the faster
(`RowLayout.pays`, from figures measured here). Stored arrays, written at export, mapped at load:
row_left, row_right, row_nan (the child for each direction and for NaN), row_threshold (internal
nodes' thresholds, sorted), row_starts (feature g's internal nodes are row_starts[g]:row_starts[g+1]),
row_roots, row_value (the leaves' values). Each thread also holds its own copy of row_left (`nxt`).
"""

from __future__ import annotations

import threading
from bisect import bisect_left

import numpy as np

__all__ = ["RowLayout", "row_layout_arrays"]

# Per-row cost, in ns, measured on this machine (2 cores; tests/unit and `python -m benchmarks serving`
# show the crossover): the row layout costs about ROW_NS_PER_NODE per node plus ROW_NS_PER_FEATURE
# per feature; the row walk about WALK_NS_PER_LEVEL per level of the deepest tree.
ROW_NS_PER_NODE = 0.2
ROW_NS_PER_FEATURE = 1_000
WALK_NS_PER_LEVEL = 3_500


def row_layout_arrays(arrays: dict[str, np.ndarray], n_features: int) -> dict[str, np.ndarray]:
    """The row layout's arrays, from the node arrays of forest_files.serving_arrays."""
    child, feature, threshold = arrays["child"].astype(np.int64), arrays["feature"], arrays["threshold"]
    n = child.size
    leaf = child == np.arange(n)
    leaves, internal = np.flatnonzero(leaf), np.flatnonzero(~leaf)
    feat, thr = feature[internal].astype(np.int64), threshold[internal]
    order = np.lexsort((thr, feat))  # by feature, then threshold
    old_of_new = np.concatenate([leaves, internal[order]])
    new_of_old = np.empty(n, dtype=np.int64)
    new_of_old[old_of_new] = np.arange(n)
    is_leaf = np.arange(n) < leaves.size
    kid = np.where(is_leaf, 0, child[old_of_new])
    left = np.where(is_leaf, np.arange(n), new_of_old[kid])
    right = np.where(is_leaf, np.arange(n), new_of_old[np.where(is_leaf, 0, kid + 1)])
    nan = np.where(arrays["nan_right"][old_of_new], right, left)
    index = np.int32 if n < 2**31 - 1 else np.int64
    return {"row_left": left.astype(index), "row_right": right.astype(index), "row_nan": nan.astype(index),
            "row_threshold": thr[order].astype(np.float32),
            "row_starts": (leaves.size + np.searchsorted(feat[order], np.arange(n_features + 1))).astype(np.int64),
            "row_roots": new_of_old[arrays["roots"]], "row_value": arrays["value"][leaves].astype(np.float64)}


class RowLayout:
    """One row at a time through the row layout; state (`nxt`) per thread."""

    def __init__(self, arrays: dict[str, np.ndarray], n_features: int, max_depth: int):
        self._left, self._right, self._nan = arrays["row_left"], arrays["row_right"], arrays["row_nan"]
        # `type: ignore[arg-type]` on memoryview(ndarray) here and in _state: numpy's stubs declare
        # ndarray.__buffer__ for Python 3.12 and later only, and mypy checks for 3.11 (setup.py's minimum)
        self._left_view = memoryview(self._left)  # type: ignore[arg-type]
        self._right_view = memoryview(self._right)  # type: ignore[arg-type]
        self._nan_view = memoryview(self._nan)  # type: ignore[arg-type]
        self._thresholds = memoryview(arrays["row_threshold"])  # type: ignore[arg-type]
        n_leaves = arrays["row_value"].size
        starts = arrays["row_starts"].tolist()
        # (feature, first node, end node, first and end position in row_threshold) per feature used
        self._groups = [(g, a, b, a - n_leaves, b - n_leaves)
                        for g, (a, b) in enumerate(zip(starts[:-1], starts[1:], strict=True)) if b > a]
        self._roots, self._value = arrays["row_roots"].astype(np.intp), arrays["row_value"]
        self._steps = range(max_depth)
        self._local = threading.local()

    @staticmethod
    def pays(n_nodes: int, n_features: int, max_depth: int) -> bool:
        """Whether one row through the row layout is expected to be faster than the row walk."""
        return ROW_NS_PER_NODE * n_nodes + ROW_NS_PER_FEATURE * n_features < WALK_NS_PER_LEVEL * max_depth

    @staticmethod
    def expected_arrays(specs: dict, n: int, n_trees: int, n_features: int) -> dict[str, tuple]:
        """{name: (dtypes, shape, value bounds)} of the row arrays of a forest of n nodes, for the manifest check."""
        try:
            n_leaves = int(specs["row_value"]["shape"][0])
        except (KeyError, TypeError, IndexError, ValueError):
            n_leaves = -1
        index = ("int32", "int64")
        return {"row_left": (index, (n,), (0, n - 1)), "row_right": (index, (n,), (0, n - 1)),
                "row_nan": (index, (n,), (0, n - 1)), "row_threshold": (("float32",), (n - n_leaves,), None),
                "row_starts": (("int64",), (n_features + 1,), (n_leaves, n)),
                "row_roots": (("int64",), (n_trees,), (0, n - 1)), "row_value": (("float64",), (n_leaves,), None)}

    def _state(self) -> tuple[np.ndarray, memoryview, dict]:
        """This thread's child table (array and memoryview of it) and, per feature, the run end it holds."""
        state = getattr(self._local, "state", None)
        if state is None:
            nxt = self._left.copy()
            view = memoryview(nxt)  # type: ignore[arg-type]  # numpy: ndarray.__buffer__ only for 3.12+
            state = self._local.state = (nxt, view, {g: a for g, a, _, _, _ in self._groups})
        return state

    def leaf_sum(self, xs: list[float]) -> float:
        """Sum, in tree order from 0.0, of the leaf values the trees give the row xs (float32 values)."""
        nxt_array, nxt, held = self._state()
        # Rewrites go through memoryviews: a memoryview slice copy costs a fraction of a numpy
        # slice assignment's call overhead, and a row makes one or two per feature.
        left, right, thresholds = self._left_view, self._right_view, self._thresholds
        for g, a, b, lo, hi in self._groups:
            xv, was = xs[g], held[g]
            if xv != xv:  # NaN: each node's own missing-value direction
                nxt[a:b] = self._nan_view[a:b]
                held[g] = None
                continue
            cut = a + bisect_left(thresholds, xv, lo, hi) - lo  # nodes with threshold < x go right
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
