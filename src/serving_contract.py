"""What every serving front answers, defined once: payload limits and the JSON error body.

Stdlib only, so the local endpoint's HTTP server (deploy/endpoint) can use it without numpy. The
SageMaker entry point (sagemaker_entry.py), the Lambda handler (lambda_function.py) and the local
endpoint answer a failure with the same status and the same body:

    {"error": "<code>", "message": "<what is wrong>", "row": <0-based row or null>,
     "column": <index, feature name or null>}

    status  codes
    400     empty_body, bad_encoding, malformed_json, malformed_csv, malformed_npy, bad_shape, no_rows,
            wrong_feature_count, unknown_feature, missing_feature, non_numeric, missing_value,
            non_finite, out_of_range, bad_request
    404     not_found                      405  method_not_allowed
    406     unsupported_accept             411  length_required
    413     payload_too_large              415  unsupported_content_type
    500     internal_error                 503  model_unavailable
"""

from __future__ import annotations

import json

__all__ = ["LAMBDA_MAX_PAYLOAD_BYTES", "MAX_PAYLOAD_ENV", "SAGEMAKER_MAX_PAYLOAD_BYTES", "STATUS",
           "error_body", "error_json"]

# SageMaker Serverless Inference's payload limit (4 MB); the container enforces it too.
SAGEMAKER_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
# Lambda's synchronous invocation payload limit (6 MB).
LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# Overrides either default where the serving code runs (a positive integer of bytes).
MAX_PAYLOAD_ENV = "GREENLIGHT_MAX_PAYLOAD_BYTES"

STATUS: dict[str, int] = {
    **dict.fromkeys(("empty_body", "bad_encoding", "malformed_json", "malformed_csv", "malformed_npy", "bad_shape",
                     "no_rows", "wrong_feature_count", "unknown_feature", "missing_feature", "non_numeric",
                     "missing_value", "non_finite", "out_of_range", "bad_request"), 400),
    "not_found": 404,
    "method_not_allowed": 405,
    "unsupported_accept": 406,
    "length_required": 411,
    "payload_too_large": 413,
    "unsupported_content_type": 415,
    "internal_error": 500,
    "model_unavailable": 503,
}


def error_body(code: str, message: str, row: int | None = None, column: int | str | None = None) -> dict:
    """The JSON error body every serving front answers with."""
    return {"error": code, "message": message, "row": row, "column": column}


def error_json(code: str, message: str, row: int | None = None, column: int | str | None = None) -> str:
    return json.dumps(error_body(code, message, row, column))
