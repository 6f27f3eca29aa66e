"""SageMaker scikit-learn serving contract: model_fn, input_fn, predict_fn, output_fn.

Runs in the stock scikit-learn serving image with nothing installed at start-up, in the Lambda
image (through lambda_function.py) and in the local endpoint. The serving path imports numpy
and the standard library only: predictions come from the compact forest (compact_forest.py),
bit-identical to scikit-learn's `predict`, its arrays memory-mapped once their digests are checked
(so a cold start reads each forest file once and holds no copy); `model.joblib` is read only for a
model directory without a forest file, and then only with the scikit-learn version that wrote it.

    model_fn(model_dir)                -> ServingModel (refuses a tampered or mismatched model)
    input_fn(body, content_type)       -> payload.Batch (decoded rows)
    predict_fn(data, model)            -> numpy float64 array, one prediction per row
    output_fn(prediction, accept)      -> (body, content type)

Client errors raise PayloadError (status_code 400/406/413/415, to_json()) from any of the three
request functions. SageMaker calls input_fn without the model, so input_fn reads the body's shape
(content type, size, syntax, numbers); predict_fn checks the rows against its model (feature count
or names, NaN, float32 range) before predicting. A caller holding the model may pass it to
input_fn to check there. The body size limit is GREENLIGHT_MAX_PAYLOAD_BYTES, else
MAX_PAYLOAD_BYTES (4 MiB, SageMaker Serverless Inference's limit). Batches bigger than one
traversal chunk (1,000 rows for 100 trees) use up to GREENLIGHT_PREDICT_THREADS threads, else one
per CPU the process may use (affinity and cgroup quota); predictions do not depend on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import capture
import compact_forest
import payload
import serving_contract
from payload import Batch, PayloadError, Schema

__all__ = ["MAX_PAYLOAD_BYTES", "ModelIntegrityError", "PayloadError", "ServingModel",
           "input_fn", "model_fn", "output_fn", "predict_fn"]

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = serving_contract.SAGEMAKER_MAX_PAYLOAD_BYTES
MAX_PAYLOAD_ENV = serving_contract.MAX_PAYLOAD_ENV
PREDICT_THREADS_ENV = "GREENLIGHT_PREDICT_THREADS"
METADATA_FILE = "metadata.json"


class ModelIntegrityError(Exception):
    """The model directory cannot be trusted or used: a checksum, format or version does not match."""


@dataclass(frozen=True)
class ServingModel:
    """A loaded model: its metadata, its input schema, and the predictor that serves it."""

    metadata: dict
    schema: Schema
    predictor: object = field(repr=False)
    predictor_name: str = compact_forest.FOREST_FORMAT

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.schema.feature_names

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predictor.predict(X)


def model_fn(model_dir: str) -> ServingModel:
    """Load and verify a model directory. Raises: ModelIntegrityError (which file, and why)."""
    directory = Path(model_dir)
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
        schema = Schema(tuple(metadata["feature_names"]), bool(metadata.get("accepts_missing_values", False)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"cannot read {directory / METADATA_FILE}: {exc}") from exc
    # Only the files this model is served from are read, and each is checked against its digest
    # first: the forest's (the Lambda image carries metadata.json and the forest only), else model.joblib.
    forest_name = metadata.get("forest_file")
    if forest_name and (directory / forest_name).exists():
        model = ServingModel(metadata, schema, _load_forest(directory / forest_name, metadata, schema))
    else:
        model = ServingModel(metadata, schema, _load_joblib(directory, metadata), "scikit-learn")
    logger.info("loaded model %s (%d features) from %s with predictor %s",
                str(metadata.get("model_sha256", "?"))[:12], schema.n_features, directory, model.predictor_name)
    return model


def input_fn(body, content_type: str = payload.JSON, max_bytes: int | None = None,
             model: ServingModel | None = None) -> Batch:
    """Parse a request body; checked against model's schema when one is given. Raises: PayloadError."""
    return payload.decode(body, content_type, max_bytes=max_bytes or max_payload_bytes(),
                          schema=model.schema if model is not None else None)


def predict_fn(data, model: ServingModel) -> np.ndarray:
    """One float64 prediction per row. Raises: PayloadError for rows the model cannot take."""
    return capture.predicted(_predict, data, model)  # a sampled capture record (capture.py)


def _predict(data, model: ServingModel) -> np.ndarray:
    if not (isinstance(data, Batch) and data.schema is model.schema):
        data = payload.check(data if isinstance(data, Batch) else Batch(np.asarray(data, dtype=np.float64)),
                             model.schema)
    if data.row is not None and model.predictor_name == compact_forest.FOREST_FORMAT:
        return np.array([model.predictor.predict_row(data.row)])
    return model.predictor.predict(data.values)


def output_fn(prediction, accept: str = payload.JSON) -> tuple[str, str]:
    """Predictions to (body, content type). Raises: PayloadError (406) for an unsupported Accept."""
    return payload.encode(prediction, accept)


def max_payload_bytes(default: int = MAX_PAYLOAD_BYTES) -> int:
    """GREENLIGHT_MAX_PAYLOAD_BYTES if set to a positive integer, else default."""
    value = _positive_int_setting(MAX_PAYLOAD_ENV, f"using {default} bytes")
    return default if value is None else value


def predict_threads() -> int | None:
    """GREENLIGHT_PREDICT_THREADS: a positive integer, or "auto" for one per CPU this process may use;
    else None (the predictor's default, one thread)."""
    if os.environ.get(PREDICT_THREADS_ENV, "").strip().lower() == "auto":
        return compact_forest.available_cpus()
    return _positive_int_setting(PREDICT_THREADS_ENV, "using one thread")


def _positive_int_setting(name: str, fallback: str) -> int | None:
    """The environment variable name as a positive integer; None (with a warning if set) otherwise."""
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value > 0:
        return value
    logger.warning("ignoring %s=%r: not a positive integer; %s", name, raw, fallback)
    return None


def _verify_sha256(path: Path, expected) -> None:
    """Stream the file through sha256 (no copy of it is held). Raises: ModelIntegrityError."""
    with open(path, "rb") as fh:
        actual = hashlib.file_digest(fh, "sha256").hexdigest()
    if actual != expected:
        raise ModelIntegrityError(f"refusing {path.name}: its sha256 is {actual}, but {METADATA_FILE} "
                                  f"records {expected}")


def _load_forest(path: Path, metadata: dict, schema: Schema):
    """The compact forest: its manifest (or legacy forest.npz) checked against metadata.json, its arrays
    against the manifest while they are mapped."""
    recorded = metadata.get("forest_format")
    if recorded not in compact_forest.READABLE_FORMATS:
        raise ModelIntegrityError(f"refusing {path.name}: {METADATA_FILE} says format {recorded!r}; this runtime "
                                  f"reads {' and '.join(map(repr, compact_forest.READABLE_FORMATS))}")
    _verify_sha256(path, metadata.get("forest_sha256"))
    try:
        forest = compact_forest.CompactForest.load(path, threads=predict_threads())
    except compact_forest.ForestIntegrityError as exc:
        raise ModelIntegrityError(str(exc)) from exc
    except compact_forest.ForestFormatError as exc:
        raise ModelIntegrityError(f"refusing {path.name}: {exc}") from exc
    if forest.n_features != schema.n_features:
        raise ModelIntegrityError(f"refusing {path.name}: it takes {forest.n_features} features, but "
                                  f"{METADATA_FILE} lists {schema.n_features}")
    return forest


def _load_joblib(directory: Path, metadata: dict):
    """The pickled estimator, only under the scikit-learn version that wrote it (pickles are not portable)."""
    name = metadata.get("model_file")
    if not name or not (directory / name).exists():
        raise ModelIntegrityError(f"{directory} has neither a forest file nor {name or 'a model file'}")
    _verify_sha256(directory / name, metadata.get("model_sha256"))
    wrote = (metadata.get("versions") or {}).get("scikit-learn")
    try:
        import joblib
        import sklearn
    except ImportError as exc:
        raise ModelIntegrityError(f"{name} needs scikit-learn {wrote}, which this runtime lacks "
                                  "(and there is no forest file)") from exc
    if wrote != sklearn.__version__:
        raise ModelIntegrityError(f"refusing {name}: written by scikit-learn {wrote}, but this runtime has "
                                  f"{sklearn.__version__}")
    model = joblib.load(directory / name)
    if hasattr(model, "n_jobs"):
        model.set_params(n_jobs=None)
    return model
