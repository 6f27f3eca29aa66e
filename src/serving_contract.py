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

Request JSON is parsed by `load_json`, which refuses arrays and objects nested deeper than
MAX_JSON_DEPTH (64) levels with a ValueError (the fronts answer 400 malformed_json). A valid request
nests at most three levels ({"instances": [[...]]}); without the bound, Python's parser recurses once
per level and 10,000 levels end in RecursionError, a 500.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

__all__ = ["JsonTooDeep", "LAMBDA_MAX_PAYLOAD_BYTES", "MAX_JSON_DEPTH", "MAX_PAYLOAD_ENV",
           "SAGEMAKER_MAX_PAYLOAD_BYTES", "STATUS", "error_body", "error_json", "json_depth_exceeds", "load_json"]

# SageMaker Serverless Inference's payload limit (4 MB); the container enforces it too.
SAGEMAKER_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
# Lambda's synchronous invocation payload limit (6 MB).
LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# Overrides either default where the serving code runs (a positive integer of bytes).
MAX_PAYLOAD_ENV = "GREENLIGHT_MAX_PAYLOAD_BYTES"
# Arrays and objects nested deeper than this are refused (load_json).
MAX_JSON_DEPTH = 64

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


class JsonTooDeep(ValueError):
    """JSON text whose arrays and objects nest deeper than the limit."""


_BRACKETS = bytes.maketrans(b"{}", b"[]")  # for counting levels, an object is a bracket pair like an array
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')
_RUNS = re.compile(rb"\[+|\]+")


def json_depth_exceeds(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when JSON text nests arrays and objects deeper than limit levels, found without parsing.

    Brackets inside strings do not count. Text with at most `limit` opening brackets is never too deep
    (two counts: the common case). Otherwise the text is cut to its brackets (bytes.translate), and each
    `replace(b"[]", b"")` removes one level from the bottom, which empties a payload of flat rows in two
    passes; when a pass removes less than a quarter, the levels left are counted over runs of brackets.
    Every step runs in C but the last, whose steps are at most one per run: the cost stays below
    parsing's. Unbalanced text that opens more than `limit` levels before it goes wrong answers True;
    other unbalanced text False (the parser then names what is wrong with it).
    """
    if isinstance(text, str):
        if text.count("[") + text.count("{") <= limit:
            return False
        data = text.encode("utf-8", "surrogatepass")
    else:
        data = bytes(text)
        if b"\x00" in data[:4]:  # UTF-16 or UTF-32, which json.loads accepts too
            data = data.decode(json.detect_encoding(data)).encode("utf-8", "surrogatepass")
        if data.count(b"[") + data.count(b"{") <= limit:
            return False
    if b"\\" in data:  # an escaped backslash first, so that \\" stays a closing quote
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = data.translate(_BRACKETS, _NOT_STRUCTURE)
    if b'"' in skeleton:  # strings: removing "" pairs keeps every bracket on its side of the quotes
        skeleton = skeleton.replace(b'""', b"")
        if b'"' in skeleton:
            skeleton = _STRING.sub(b"", skeleton)
    if b"[" * (limit + 1) in skeleton:
        return True
    removed = 0
    while skeleton and removed <= limit:
        reduced = skeleton.replace(b"[]", b"")
        if len(reduced) == len(skeleton):
            return False  # unbalanced
        if len(reduced) * 4 > len(skeleton) * 3:
            break
        skeleton, removed = reduced, removed + 1
    if removed > limit:
        return True
    steps = [len(run) if run[0] == ord("[") else -len(run) for run in _RUNS.findall(skeleton)]
    return removed + max(accumulate(steps), default=0) > limit


def load_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH):
    """json.loads(text), refusing nesting deeper than max_depth levels.

    Raises:
        JsonTooDeep: nested deeper than max_depth (a ValueError, as json's own errors are).
        ValueError: text is not JSON.
    """
    message = f"arrays and objects nest deeper than {max_depth} levels, the limit"
    if json_depth_exceeds(text, max_depth):
        raise JsonTooDeep(message)
    try:
        return json.loads(text)
    except RecursionError:  # unbalanced text deeper than the parser can go
        raise JsonTooDeep(message) from None
