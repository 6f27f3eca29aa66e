"""The model sizes `python -m benchmarks serving` measures, trained as `greenlight run --data` trains them.

Four sizes (MODELS): the default model (100 trees on the bundled diabetes data); forests on a
generated 50,000 x 10 CSV and a generated 40,000 x 12 CSV of uniform features, with default
hyperparameters (100 fully grown trees); and a wide, shallow forest on a generated 200,000 x 20 CSV
with `NEstimators=500`, `MaxDepth=12`. A generated CSV has standard normal (or uniform on [0, 1))
features and target = X @ w + noise, from numpy `default_rng(seed)`, so it is the same on every run.
Each CSV is split by src/preprocess.py (as the pipeline's Preprocess step does) and
fitted by src/train.py's `fit` with the step's defaults for everything not named.

Fitting the large forests takes minutes, so the fitted estimator is cached under
.greenlight/bench-models/ (gitignored), keyed by the generation parameters, the hyperparameters,
the scikit-learn and numpy versions and the source of preprocess.py and `train.fit`. Every run then
writes the model directory afresh with `train.save_model` (model.joblib, the forest files,
metadata.json, code/ from src/), so what is measured is always what the current code writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report import ROOT

SRC = ROOT / "src"
CACHE = ROOT / ".greenlight" / "bench-models"
PY = sys.executable


@dataclass(frozen=True)
class ModelSpec:
    """One benchmarked model size: its data (None rows: the bundled diabetes CSV) and hyperparameters."""

    key: str
    title: str
    rows: int | None = None
    features: int = 10
    seed: int = 0
    hyperparameters: dict = field(default_factory=dict)  # train.py's flags, as `greenlight run` passes them
    features_from: str = "normal"  # the generated features: standard "normal", or "uniform" on [0, 1)


MODELS = (
    ModelSpec("default", "default model (diabetes, 442 × 10)"),
    ModelSpec("50k", "50,000 × 10 CSV, default hyperparameters", 50_000, 10),
    ModelSpec("40k", "40,000 × 12 uniform CSV, default hyperparameters", 40_000, 12, features_from="uniform"),
    ModelSpec("wide", "200,000 × 20 CSV, 500 trees, MaxDepth=12", 200_000, 20,
              hyperparameters={"n_estimators": "500", "max_depth": "12"}),
)


@dataclass(frozen=True)
class Trained:
    """A model directory ready to serve, its headerless test rows (features only) and feature names."""

    spec: ModelSpec
    model_dir: Path
    rows: list[str]
    features: list[str]
    metadata: dict
    cache: Path


def write_csv(spec: ModelSpec, path: Path) -> None:
    """spec.rows x spec.features standard normal features and a linear target (first column); seeded."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(spec.seed)
    x = (rng.standard_normal((spec.rows, spec.features)) if spec.features_from == "normal"
         else rng.uniform(0.0, 1.0, (spec.rows, spec.features)))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(spec.features)])
    frame.insert(0, "target", x @ rng.uniform(-10, 10, spec.features) + rng.normal(0, 1, spec.rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.6g")


@contextlib.contextmanager
def _train_module():
    """src/train.py imported by bare name, as the container runs it; src/ modules forgotten afterwards,
    so that a model's own code/ is what serves it."""
    before = set(sys.modules)
    sys.path.insert(0, str(SRC))
    try:
        import train

        yield train
    finally:
        sys.path.remove(str(SRC))
        for name in set(sys.modules) - before:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(SRC)):
                del sys.modules[name]


def cache_key(spec: ModelSpec) -> str:
    import numpy
    import sklearn

    with _train_module() as train:
        fit_source, defaults = inspect.getsource(train.fit), repr(train.parse_args(["--model-dir", "x"]))
    parts = {"spec": [spec.key, spec.rows, spec.features, spec.seed, sorted(spec.hyperparameters.items()),
                      *([spec.features_from] if spec.features_from != "normal" else [])],
             "versions": [sklearn.__version__, numpy.__version__],
             "preprocess": hashlib.sha256((SRC / "preprocess.py").read_bytes()).hexdigest(),
             "fit": fit_source, "defaults": defaults}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare(spec: ModelSpec, work: Path, log=print) -> Trained:
    """The spec's model directory under work (fitted now, or taken from the cache), with its test rows."""
    with _train_module() as train:
        return _prepare(spec, work, log, train)


def _prepare(spec: ModelSpec, work: Path, log, train) -> Trained:
    import joblib

    cache = CACHE / f"{spec.key}-{cache_key(spec)}"
    splits = cache / "splits"
    if not (splits / "test" / "test.csv").exists():
        data = cache / "data"
        if spec.rows is None:
            from greenlight.data import write_default_dataset

            write_default_dataset(data)
        else:
            log(f"serving: generating {spec.rows:,} x {spec.features} rows (seed {spec.seed})")
            write_csv(spec, data / "data.csv")
        subprocess.run([PY, str(SRC / "preprocess.py"), "--input-dir", str(data), "--output-dir", str(splits)],
                       check=True, capture_output=True)
    args = train.parse_args(["--train", str(splits / "train"), "--validation", str(splits / "validation"),
                             "--model-dir", str(work / spec.key), "--code-dir", str(SRC),
                             *[f"--{k}={v}" for k, v in spec.hyperparameters.items()]])
    hp = {k: getattr(args, k) for k in ("n_estimators", "max_depth", "min_samples_leaf", "max_features",
                                        "random_state", "n_jobs")}
    train_frame, validation = train.load_split(args.train, "train"), train.load_split(args.validation, "validation")
    fitted = cache / "fitted.joblib"
    if fitted.exists():
        model, features, target = joblib.load(fitted), list(train_frame.columns[1:]), train_frame.columns[0]
    else:
        log(f"serving: fitting the {spec.key} model ({len(train_frame):,} rows; cached for later runs)")
        model, features, target = train.fit(train_frame, hp)
        joblib.dump(model, fitted)
    metadata = train.save_model(Path(args.model_dir), model, features, target, train_frame, validation, hp, SRC)
    lines = (splits / "test" / "test.csv").read_text().strip().splitlines()[1:]
    return Trained(spec, Path(args.model_dir), [line.split(",", 1)[1] for line in lines], features, metadata, cache)


def clear_stale(keep: set[str]) -> None:
    """Remove cached models no spec uses any more (older code or versions)."""
    if CACHE.is_dir():
        for entry in CACHE.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)


def train_default_model(work: Path) -> tuple[Path, list[str], list[str]]:
    """The default (diabetes) model, trained as `greenlight run` trains it: (model dir, headerless CSV rows
    of the test split, feature names). Other benchmarks (image, batch) start from it."""
    trained = prepare(MODELS[0], Path(work))
    return trained.model_dir, trained.rows, trained.features
