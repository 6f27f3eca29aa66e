"""Preprocess step: read CSV files, validate them, and split into train/validation/test.

Runs as `python3 preprocess.py [args]` in the SageMaker scikit-learn processing container.
Input: every `*.csv` (with a header) under --input-dir, concatenated in name order.
Output: `train/train.csv`, `validation/validation.csv`, `test/test.csv` under --output-dir,
each with the header, the target column first and the features in input order.

Bad data exits 1 with one line on stderr that names the problem.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

# The container root: "/" on SageMaker; Greenlight's local runner points it at a sandbox.
CONTAINER_ROOT = os.environ.get("GREENLIGHT_CONTAINER_ROOT", "/")
DEFAULT_INPUT = os.path.join(CONTAINER_ROOT, "opt/ml/processing/input/data")
DEFAULT_OUTPUT = os.path.join(CONTAINER_ROOT, "opt/ml/processing")
SPLITS = ("train", "validation", "test")


class DataError(Exception):
    """The input data cannot be used; the message says why."""


def read_inputs(input_path: Path) -> pd.DataFrame:
    """Read one CSV file, or every CSV under a directory, into one frame."""
    if input_path.is_file():
        files = [input_path]
    elif input_path.is_dir():
        files = sorted(p for p in input_path.rglob("*") if p.is_file() and p.suffix.lower() in {".csv", ".gz"}
                       or p.name.lower().endswith(".csv.gz"))
    else:
        raise DataError(f"input path {input_path} does not exist")
    if not files:
        raise DataError(f"empty input: no .csv files under {input_path}")
    frames: list[pd.DataFrame] = []
    for path in files:
        try:
            frame = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            raise DataError(f"empty input: {path.name} has no header and no rows") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot parse {path.name} as CSV: {str(exc).strip()}") from None
        if frames and list(frame.columns) != list(frames[0].columns):
            raise DataError(
                f"{path.name} has columns {list(frame.columns)}, but {files[0].name} has "
                f"{list(frames[0].columns)}; all input files must share one header"
            )
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(data) == 0:
        raise DataError(f"empty input: {', '.join(p.name for p in files)} has a header but no rows")
    return data


def validate(data: pd.DataFrame, target: str) -> pd.DataFrame:
    """Check the frame and return it with the target column first; raise DataError otherwise."""
    if target not in data.columns:
        raise DataError(
            f"missing target column {target!r}; columns are {list(data.columns)} "
            "(set --target-column)"
        )
    features = [c for c in data.columns if c != target]
    if not features:
        raise DataError(f"no feature columns: the only column is the target {target!r}")
    bad = [c for c in features if not pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c])]
    if bad:
        examples = []
        for col in bad[:3]:
            coerced = pd.to_numeric(data[col], errors="coerce")
            idx = coerced.isna() & data[col].notna()
            first = int(np.flatnonzero(idx.to_numpy())[0]) if idx.any() else 0
            examples.append(f"{col!r} (row {first + 1}: {data[col].iloc[first]!r})")
        raise DataError("non-numeric feature columns: " + ", ".join(examples)
                        + (f" and {len(bad) - 3} more" if len(bad) > 3 else ""))
    y = pd.to_numeric(data[target], errors="coerce")
    not_numeric = y.isna() & data[target].notna()
    if not_numeric.any():
        row = int(np.flatnonzero(not_numeric.to_numpy())[0])
        raise DataError(f"target column {target!r} is not numeric: row {row + 1} is {data[target].iloc[row]!r}")
    non_finite = ~np.isfinite(y.to_numpy(dtype="float64"))
    if non_finite.any():
        rows = np.flatnonzero(non_finite)
        raise DataError(
            f"NaN/inf in target column {target!r}: {len(rows)} row(s), first at row {rows[0] + 1}; "
            "drop or fill those rows"
        )
    x = data[features].to_numpy(dtype="float64")
    if np.isinf(x).any():
        row, col = (int(v) for v in np.argwhere(np.isinf(x))[0])
        raise DataError(f"inf in feature column {features[col]!r} at row {row + 1}")
    return data[[target, *features]]


def split_sizes(n_rows: int, validation_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Rows for train, validation and test; raise DataError when a split would be empty."""
    n_val = math.ceil(n_rows * validation_fraction)
    n_test = math.ceil(n_rows * test_fraction)
    n_train = n_rows - n_val - n_test
    if n_train < 2 or n_val < 1 or n_test < 1:
        need = 4
        while (need - math.ceil(need * validation_fraction) - math.ceil(need * test_fraction)) < 2:
            need += 1
        raise DataError(
            f"too few rows: {n_rows} row(s), but a split of {validation_fraction:g} validation and "
            f"{test_fraction:g} test needs at least {need} (2 to train, 1 each to validate and test)"
        )
    return n_train, n_val, n_test


def split(data: pd.DataFrame, seed: int, validation_fraction: float, test_fraction: float) -> dict[str, pd.DataFrame]:
    """Deterministic shuffle-and-split by seed."""
    n_train, n_val, _ = split_sizes(len(data), validation_fraction, test_fraction)
    order = np.random.default_rng(seed).permutation(len(data))
    parts = np.split(order, [n_train, n_train + n_val])
    return {name: data.iloc[idx].reset_index(drop=True) for name, idx in zip(SPLITS, parts, strict=True)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-dir", default=os.environ.get("GREENLIGHT_INPUT_DIR", DEFAULT_INPUT),
                   help="CSV file or directory of CSV files (default: %(default)s)")
    p.add_argument("--output-dir", default=os.environ.get("GREENLIGHT_OUTPUT_DIR", DEFAULT_OUTPUT),
                   help="writes train/, validation/ and test/ here (default: %(default)s)")
    p.add_argument("--target-column", default="target", help="name of the target column (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="shuffle seed (default: %(default)s)")
    p.add_argument("--validation-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    args = p.parse_args(argv)
    for name in ("validation_fraction", "test_fraction"):
        if not 0 < getattr(args, name) < 0.5:
            p.error(f"--{name.replace('_', '-')} must be between 0 and 0.5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = validate(read_inputs(Path(args.input_dir)), args.target_column)
        parts = split(data, args.seed, args.validation_fraction, args.test_fraction)
    except DataError as exc:
        print(f"preprocess: error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.output_dir)
    for name, frame in parts.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        frame.to_csv(out / name / f"{name}.csv", index=False, float_format="%.17g")
    sizes = ", ".join(f"{name} {len(frame)}" for name, frame in parts.items())
    print(f"preprocess: {len(data)} rows, {data.shape[1] - 1} features, target {args.target_column!r}; {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
