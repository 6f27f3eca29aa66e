"""The compact forest's files (format greenlight-forest/2): written at export, checked and mapped at load.

Files, all named `forest.*` (FILE_PATTERN): `forest.json`, the manifest (format, feature count, node
and tree counts, and each array's file, dtype, shape and sha256), and one uncompressed
`forest.<array>.npy` per array, stored in the dtype and order serving reads. `read_forest` makes one
streaming pass over each array file (a 256 KiB buffer) that checks its sha256 against the manifest
and its index range against the forest, then maps it read-only (`np.load(mmap_mode="r")`): no copy
is made, pages are read when a prediction needs them, and processes serving the same files share
them. Node arrays (all trees concatenated, each tree breadth-first with an internal node's children
adjacent): `feature` (int16, or int32 beyond 32,768 features), `threshold` (float32, already
floor32: the largest float32 not above the split; +inf at a leaf), `child` (int32, or int64 beyond
2**31 nodes: the left child, the right one next to it; a leaf's own index, so a leaf loops on
itself), `value` (float64), `nan_right` (bool: NaN goes right here); per tree `roots` and `depths`;
and, where the row layout pays (forest_rows.py), its `row_*` arrays. Forests of up to
WIDE_INDEX_MAX_NODES nodes store feature and child as int64 (faster, and small either way).

Format greenlight-forest/1 (`forest.npz`: float64 thresholds, int64 children, written by earlier
versions) still loads: read whole and converted in memory by the same `serving_arrays`.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from forest_rows import RowLayout, row_layout_arrays

__all__ = ["FILE_PATTERN", "FOREST_FORMAT", "LEGACY_FILE", "LEGACY_FORMAT", "MANIFEST_FILE", "READABLE_FORMATS",
           "ForestFormatError", "ForestIntegrityError", "array_file", "read_forest", "serving_arrays", "write_forest"]

FOREST_FORMAT = "greenlight-forest/2"
LEGACY_FORMAT = "greenlight-forest/1"
READABLE_FORMATS = (FOREST_FORMAT, LEGACY_FORMAT)
MANIFEST_FILE = "forest.json"
LEGACY_FILE = "forest.npz"
FILE_PATTERN = "forest.*"  # every file of the forest: the manifest and its arrays (what serving reads)
# Array name -> the dtypes it may have; the row_* arrays are there when the row layout pays.
TREE_ARRAYS = {"roots": ("int64",), "depths": ("int64",)}
NODE_ARRAYS = {"feature": ("int16", "int32", "int64"), "threshold": ("float32",), "child": ("int32", "int64"),
               "value": ("float64",), "nan_right": ("bool",)}
# Forests of at most this many nodes store feature and child as int64: numpy then gathers and adds
# without a cast (batches about 6% faster, one-row walks 10%); bigger ones store the narrowest type
# that fits (19 bytes a node instead of 29, and trees of 40,000 nodes ran 11% faster for staying in cache).
WIDE_INDEX_MAX_NODES = 1 << 19
READ_CHUNK = 1 << 18  # bytes per read while checking a file's digest (one buffer: a bigger one adds to RSS)


class ForestFormatError(ValueError):
    """The forest files are unreadable, inconsistent, or of a format this code does not read."""


class ForestIntegrityError(ForestFormatError):
    """A forest file's sha256 is not the one its manifest records."""


def array_file(name: str) -> str:
    """The file holding array `name`."""
    return f"forest.{name}.npy"


def serving_arrays(feature, threshold, left, value, missing_left, roots, depths, n_features: int,
                   row_layout: bool | None = None) -> dict[str, np.ndarray]:
    """The arrays serving reads, from nodes in breadth-first order per tree (a leaf has left == -1).

    row_layout: add the row layout's arrays (None: when it is faster than the row walk, `RowLayout.pays`).
    """
    left = np.asarray(left, dtype=np.int64)
    n = left.size
    leaf = left < 0
    wide = n <= WIDE_INDEX_MAX_NODES
    feature_type = np.int64 if wide else np.int16 if n_features <= 2**15 else np.int32
    arrays = {
        "roots": np.asarray(roots, dtype=np.int64), "depths": np.asarray(depths, dtype=np.int64),
        "feature": np.where(leaf, 0, feature).astype(feature_type),
        "threshold": np.where(leaf, np.float32(np.inf), _floor32(np.asarray(threshold, dtype=np.float64))),
        "child": np.where(leaf, np.arange(n), left).astype(np.int64 if wide or n >= 2**31 - 1 else np.int32),
        "value": np.asarray(value, dtype=np.float64),
        "nan_right": ~leaf & ~np.asarray(missing_left, dtype=bool),
    }
    arrays["threshold"] = arrays["threshold"].astype(np.float32)
    max_depth = int(arrays["depths"].max()) if arrays["depths"].size else 0
    if row_layout if row_layout is not None else RowLayout.pays(n, n_features, max_depth):
        arrays.update(row_layout_arrays(arrays, n_features))
    return arrays


def write_forest(directory: Path, arrays: dict[str, np.ndarray], n_features: int) -> dict:
    """Write the arrays as .npy files and the manifest; return the manifest (its "files" key lists them all)."""
    directory = Path(directory)
    specs: dict[str, dict[str, Any]] = {}
    for name, array in arrays.items():
        path = directory / array_file(name)
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        specs[name] = {"file": path.name, "dtype": array.dtype.str, "shape": list(array.shape), "sha256": digest}
    depths = arrays["depths"]
    manifest = {"format": FOREST_FORMAT, "n_features": int(n_features), "trees": int(depths.size),
                "nodes": int(arrays["value"].size), "max_depth": int(depths.max()) if depths.size else 0,
                "row_layout": "row_left" in arrays, "bytes": int(sum(a.nbytes for a in arrays.values())),
                "arrays": specs}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return {**manifest, "files": [MANIFEST_FILE, *sorted(s["file"] for s in specs.values())]}


def _floor32(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 threshold."""
    with np.errstate(over="ignore"):
        t32 = threshold.astype(np.float32)
    above = t32.astype(np.float64) > threshold
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


# -- reading ---------------------------------------------------------------------------------------

def read_forest(path: Path | str) -> tuple[dict[str, np.ndarray], int]:
    """(arrays, n_features) of a forest: a manifest, a legacy forest.npz, or a directory holding either.

    Raises: ForestFormatError, ForestIntegrityError, OSError.
    """
    path = Path(path)
    if path.is_dir():
        path = path / (MANIFEST_FILE if (path / MANIFEST_FILE).exists() or not (path / LEGACY_FILE).exists()
                       else LEGACY_FILE)
    return _read_legacy(path) if path.suffix == ".npz" else _read_manifest(path)


def _read_manifest(path: Path) -> tuple[dict[str, np.ndarray], int]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        fmt, n_features, n_trees = manifest.get("format"), int(manifest["n_features"]), int(manifest["trees"])
        n, specs = int(manifest["nodes"]), dict(manifest["arrays"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ForestFormatError(f"cannot read {path.name}: {exc}") from exc
    if fmt != FOREST_FORMAT:
        raise ForestFormatError(f"{path.name}: forest format {fmt!r} is not supported (this code reads "
                                f"{FOREST_FORMAT!r}, and {LEGACY_FORMAT!r} in {LEGACY_FILE})")
    expected: dict[str, tuple[tuple[str, ...], tuple[int, ...], tuple[int, int | None] | None]]
    expected = {name: (dtypes, (n_trees,), (0, n - 1) if name == "roots" else (0, None))
                for name, dtypes in TREE_ARRAYS.items()}
    expected.update({name: (dtypes, (n,), None) for name, dtypes in NODE_ARRAYS.items()})
    expected["feature"] = (*expected["feature"][:2], (0, n_features - 1))
    expected["child"] = (*expected["child"][:2], (0, n - 1))
    if "row_left" in specs:
        expected.update(RowLayout.expected_arrays(specs, n, n_trees, n_features))
    missing = sorted(set(expected) - set(specs))
    if missing:
        raise ForestFormatError(f"{path.name} lacks arrays {missing}")
    arrays = {name: _map_verified(path.parent, name, specs[name], *expected[name]) for name in expected}
    return arrays, n_features


def _map_verified(directory: Path, name: str, spec: dict, dtypes: tuple[str, ...], shape: tuple[int, ...],
                  bounds: tuple[int, int | None] | None) -> np.ndarray:
    """The array file mapped read-only, once one streaming pass has checked its sha256 and value range."""
    try:
        file, recorded, dtype = spec["file"], spec["sha256"], np.dtype(spec["dtype"])
    except (KeyError, TypeError) as exc:
        raise ForestFormatError(f"{MANIFEST_FILE}: array {name!r} lacks {exc}") from exc
    if (file != array_file(name) or dtype.name not in dtypes or not dtype.isnative
            or tuple(spec.get("shape", ())) != shape):
        raise ForestFormatError(f"{MANIFEST_FILE}: array {name!r} is {file!r}, {dtype.str}, shape {spec.get('shape')};"
                                f" expected {array_file(name)!r}, one of {list(dtypes)}, shape {list(shape)}")
    path = directory / file
    with open(path, "rb") as fh:
        header: tuple[tuple[int, ...], bool, np.dtype] | None = None
        bad_header: Exception | None = None
        try:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            header, offset = read_header(fh), fh.tell()
        except Exception as exc:  # a damaged header: ValueError, SyntaxError or tokenize.TokenError from numpy
            bad_header, offset = exc, 0
        fh.seek(0)
        digest, size, low, high = _stream(fh, offset, dtype if bounds and header is not None else None)
    if digest != recorded:
        raise ForestIntegrityError(f"refusing {file}: its sha256 is {digest}, but {MANIFEST_FILE} records {recorded}")
    if header is None:
        raise ForestFormatError(f"{file} is not a .npy file: {bad_header}")
    stored_shape, fortran, stored_dtype = header
    if stored_shape != shape or fortran or stored_dtype != dtype or size != dtype.itemsize * math.prod(shape):
        raise ForestFormatError(f"{file} holds {size} bytes of {stored_dtype} {stored_shape}; {MANIFEST_FILE} says "
                                f"{dtype} {shape}")
    if bounds is not None and low is not None and (low < bounds[0] or (bounds[1] is not None and high > bounds[1])):
        raise ForestFormatError(f"{file} holds values from {low} to {high}: outside the forest "
                                f"[{bounds[0]}, {bounds[1]}]")
    if size == 0:
        return np.empty(shape, dtype)
    return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))  # a plain ndarray over the mapping


def _stream(fh, offset: int, dtype: np.dtype | None) -> tuple[str, int, Any, Any]:
    """(sha256 of the whole file, bytes after offset, min and max of those as dtype or None): one pass, one buffer."""
    digest = hashlib.sha256(fh.read(offset))
    buffer = bytearray(READ_CHUNK)
    view, size, low, high = memoryview(buffer), 0, None, None
    while got := fh.readinto(buffer):
        digest.update(view[:got])
        size += got
        # READ_CHUNK is a multiple of every itemsize and readinto fills it until EOF, so only a last chunk
        # of a malformed file can be ragged (and the caller refuses its size)
        if dtype is not None and got % dtype.itemsize == 0:
            part = np.frombuffer(buffer, dtype, got // dtype.itemsize)
            low = part.min() if low is None else min(low, part.min())
            high = part.max() if high is None else max(high, part.max())
    return digest.hexdigest(), size, low, high


def _read_legacy(path: Path) -> tuple[dict[str, np.ndarray], int]:
    """A greenlight-forest/1 forest.npz (float64 thresholds, int64 children), converted in memory."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (ValueError, KeyError, EOFError, OSError) as exc:
        raise ForestFormatError(f"cannot read {path.name}: {exc}") from exc
    fmt = str(arrays.get("format", ""))
    if fmt != LEGACY_FORMAT:
        raise ForestFormatError(f"{path.name}: forest format {fmt!r} is not supported (this code reads "
                                f"{LEGACY_FORMAT!r} in {LEGACY_FILE}, and {FOREST_FORMAT!r})")
    missing = {"n_features", "roots", "depths", "feature", "threshold", "left", "value", "missing_left"} - arrays.keys()
    if missing:
        raise ForestFormatError(f"{path.name} lacks arrays {sorted(missing)}")
    n_features, roots, depths = int(arrays["n_features"]), arrays["roots"], arrays["depths"]
    feature, left, n = arrays["feature"], arrays["left"], arrays["value"].size
    if not (feature.size == arrays["threshold"].size == left.size == arrays["missing_left"].size == n) \
            or roots.size != depths.size:
        raise ForestFormatError(f"{path.name}: forest arrays have inconsistent lengths")
    internal = left >= 0
    if ((left[internal] + 1 >= n).any() or (feature[internal] >= n_features).any() or (feature < 0).any()
            or (roots < 0).any() or (roots >= n).any() or (depths < 0).any()):
        raise ForestFormatError(f"{path.name}: forest arrays point outside the forest")
    return serving_arrays(feature, arrays["threshold"], left, arrays["value"], arrays["missing_left"], roots, depths,
                          n_features), n_features
