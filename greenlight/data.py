"""The default data set: scikit-learn's bundled diabetes data (442 rows, 10 features), no download.

Shipped as `greenlight/data/diabetes.csv` (written from `sklearn.datasets.load_diabetes`; a test
checks it still equals that), so the CLI need not import scikit-learn to stage it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_TARGET", "DIABETES_CSV", "default_dataset_csv", "diabetes_csv_from_sklearn",
           "write_default_dataset"]

DEFAULT_TARGET = "target"
DEFAULT_FILENAME = "diabetes.csv"
DIABETES_CSV = Path(__file__).resolve().parent / "data" / DEFAULT_FILENAME


def diabetes_csv_from_sklearn() -> bytes:
    """The diabetes data as CSV bytes with a header, computed from scikit-learn's copy."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame  # features then "target"
    return frame.to_csv(index=False, float_format="%.17g").encode("utf-8")


def default_dataset_csv() -> bytes:
    """The diabetes data as CSV bytes with a header; identical on every call."""
    return DIABETES_CSV.read_bytes()


def write_default_dataset(directory: Path) -> Path:
    """Write diabetes.csv into directory (created if needed) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DEFAULT_FILENAME
    data = default_dataset_csv()
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return path
