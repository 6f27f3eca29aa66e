"""Traffic for the drift tests: rows like the bundled data (with small noise) or shifted, and the capture lines
the real serving code (src/capture.py through inference.predict_fn) writes for them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from greenlight.data import default_dataset_csv

__all__ = ["NOISE", "capture_lines", "requests_from_the_bundled_data"]

NOISE = 0.05  # of each feature's standard deviation: "small noise"


def requests_from_the_bundled_data(n: int, seed: int, shift: dict[str, float] | None = None) -> np.ndarray:
    """n rows drawn from the bundled data with small noise (not on `sex`, a two-valued code), each feature in
    `shift` moved by that many standard deviations."""
    data = pd.read_csv(io.BytesIO(default_dataset_csv())).drop(columns="target")
    columns = list(data.columns)
    rng = np.random.default_rng(seed)
    rows = data.to_numpy()[rng.integers(0, len(data), n)]
    std = data.std().to_numpy()
    noise = rng.normal(0.0, NOISE * std, rows.shape)
    noise[:, columns.index("sex")] = 0.0
    rows = rows + noise
    for feature, sigmas in (shift or {}).items():
        rows[:, columns.index(feature)] += sigmas * std[columns.index(feature)]
    return rows


def capture_lines(model_dir: Path, rows: np.ndarray, work: Path, *, target: str, per_request: int = 1,
                  max_rows: int = 100) -> list[str]:
    """The capture lines src/capture.py writes when the model at model_dir serves `rows` as text/csv requests of
    `per_request` rows each, as the `target` would."""
    from tests.conftest import imported_src_modules

    with imported_src_modules(("inference", "capture", "payload")) as src:
        src.capture.reset()
        src.capture.configure(sink=str(work), synchronous=True, target=target, max_rows=max_rows)
        try:
            model = src.inference.model_fn(str(model_dir))
            for start in range(0, len(rows), per_request):
                body = "".join(",".join(map(repr, row)) + "\n" for row in rows[start:start + per_request].tolist())
                src.inference.predict_fn(src.inference.input_fn(body, "text/csv"), model)
        finally:
            src.capture.reset()
    path = Path(work) / f"{target}.jsonl"
    lines = path.read_text().splitlines()
    path.unlink()
    return lines
