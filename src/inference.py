"""SageMaker scikit-learn serving contract: model_fn, input_fn, predict_fn, output_fn.

Minimal version (the strict, fast runtime is issue 4): loads model.joblib after checking its
sha256 against metadata.json, reads CSV rows or JSON instances, answers JSON or CSV.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np


class ModelIntegrityError(Exception):
    """The model file does not match its metadata."""


def model_fn(model_dir: str):
    import joblib

    directory = Path(model_dir)
    metadata = json.loads((directory / "metadata.json").read_text(encoding="utf-8"))
    model_path = directory / metadata["model_file"]
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if digest != metadata["model_sha256"]:
        raise ModelIntegrityError(
            f"refusing {model_path.name}: sha256 {digest} does not match metadata.json {metadata['model_sha256']}"
        )
    return {"model": joblib.load(model_path), "metadata": metadata}


def input_fn(body, content_type: str = "application/json") -> np.ndarray:
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else str(body)
    if content_type.startswith("text/csv"):
        return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)
    if content_type.startswith("application/json"):
        doc = json.loads(text)
        rows = doc["instances"] if isinstance(doc, dict) else doc
        arr = np.asarray(rows, dtype="float64")
        return arr.reshape(1, -1) if arr.ndim == 1 else arr
    raise ValueError(f"unsupported content type {content_type!r}")


def predict_fn(data: np.ndarray, model) -> np.ndarray:
    return model["model"].predict(data)


def output_fn(prediction: np.ndarray, accept: str = "application/json"):
    if accept.startswith("text/csv"):
        return "\n".join(repr(float(v)) for v in prediction) + "\n", "text/csv"
    return json.dumps({"predictions": [float(v) for v in prediction]}), "application/json"
