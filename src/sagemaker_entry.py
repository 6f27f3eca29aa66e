"""SageMaker entry point that answers client errors with their 4xx status (SAGEMAKER_PROGRAM=sagemaker_entry.py).

The stock scikit-learn serving container (sagemaker-containers' Transformer) wraps a module's
input_fn/predict_fn/output_fn so that any exception becomes a ClientError, which Flask answers
with an HTML 500. Its one way out is `transform_fn`: whatever it returns is the response, and a
`sagemaker_containers.beta.framework.worker.Response` carries a status. So this module defines
model_fn and transform_fn only (the container refuses a module defining both transform_fn and
input_fn), runs inference.py's four functions, and turns a PayloadError into a JSON response
with its 400/406/413/415. `inference.py` alone also serves, with HTML 500s for client errors.
"""

from __future__ import annotations

import inference
from inference import model_fn

__all__ = ["model_fn", "transform_fn"]


def transform_fn(model, request_body, content_type, accept):
    """input_fn -> predict_fn -> output_fn; a PayloadError becomes a JSON error response with its status."""
    try:
        data = inference.input_fn(request_body, content_type)
        return inference.output_fn(inference.predict_fn(data, model), accept)
    except inference.PayloadError as exc:
        return client_error_response(exc)


def client_error_response(exc: inference.PayloadError):
    """The serving toolkit's Flask response for exc; re-raises exc where that toolkit is absent."""
    try:
        from sagemaker_containers.beta.framework import worker
    except ImportError:
        raise exc from None
    return worker.Response(response=exc.to_json(), status=exc.status_code, mimetype="application/json")
