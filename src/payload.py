"""Request bodies to checked feature rows, predictions to response bodies; client errors as PayloadError.

Decoding (`decode`) reads the body's shape only; `check` holds the rows against a model's Schema
(feature count or names, numbers only, NaN only where the model was trained with it, values that
survive the cast to float32). Every failure is a PayloadError naming the problem, with the
0-based row and the column (an index, or a feature name for records) where one applies; its
code decides its HTTP status and its body is the one every serving front answers with (both in
serving_contract.py): missing_value is NaN for a model trained without, non_finite is inf,
out_of_range is beyond float32.
"""

from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

import csv_numbers
import serving_contract

__all__ = ["ACCEPTS", "CONTENT_TYPES", "Batch", "PayloadError", "Schema", "check", "decode", "encode"]

CSV, JSON, NPY = "text/csv", "application/json", "application/x-npy"
CONTENT_TYPES = (CSV, JSON, NPY)
ACCEPTS = (JSON, CSV)
_WILDCARD_ACCEPTS = {"*/*": JSON, "application/*": JSON, "text/*": CSV}
_NUMBER_KINDS = frozenset("fiu")
_VECTORISED_CSV_BYTES = 16 * 1024  # smaller CSV bodies parse as fast with np.loadtxt


class PayloadError(ValueError):
    """The request is the client's fault; `status_code` and `to_json()` make the HTTP answer."""

    def __init__(self, error: str, message: str, *, status_code: int | None = None,
                 row: int | None = None, column: int | str | None = None):
        super().__init__(message)
        self.error, self.message = error, message
        self.status_code = status_code if status_code is not None else serving_contract.STATUS.get(error, 400)
        self.row, self.column = row, column

    def to_dict(self) -> dict:
        return serving_contract.error_body(self.error, self.message, self.row, self.column)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class Schema:
    """What a model accepts: its feature names in order, and whether NaN (a missing value) is allowed."""

    feature_names: tuple[str, ...]
    allow_nan: bool = False

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


@dataclass(frozen=True)
class Batch:
    """Rows from a request. `schema` is set once `check` has turned them into float32 for that schema.

    A single row decoded from text comes as `row` (Python floats) with no `values` yet, and the `text` it was
    decoded from (capture keeps the text until its writer runs, not the row: decision 0058); once checked it
    carries both, `row` then rounded to float32, for the predictor's single-row path.
    """

    values: np.ndarray | None
    columns: tuple[str, ...] | None = None
    schema: Schema | None = None
    row: list[float] | None = None
    text: str | None = None

    @classmethod
    def from_text(cls, text: str) -> Batch:
        """The Batch `decode` made of a one-row body's `text`, made again (the same row, float for float)."""
        row = _decode_json(text) if text.lstrip()[:1] in ("[", "{") else _decode_csv(text)
        if not isinstance(row, list):
            raise ValueError("not the text of one row")
        return cls(None, None, None, row, text)


def media_type(header: str | None) -> str:
    """'Text/CSV; charset=utf-8' -> 'text/csv'."""
    return (header or "").split(";", 1)[0].strip().lower()


def decode(body, content_type: str | None, *, max_bytes: int, schema: Schema | None = None) -> Batch:
    """Parse a request body (its shape only); with a schema, also `check` it. Raises: PayloadError."""
    if isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    size = _size(body)
    if size > max_bytes:
        raise PayloadError("payload_too_large", f"the body is {size} bytes; the limit is {max_bytes}",
                           status_code=413)
    kind = media_type(content_type) or JSON
    if kind not in CONTENT_TYPES:
        raise PayloadError("unsupported_content_type",
                           f"content type {kind!r} is not supported; use one of {', '.join(CONTENT_TYPES)}",
                           status_code=415)
    if size == 0 or (size < 64 and not body.strip()):
        raise PayloadError("empty_body", "the body is empty")
    batch: Batch | list[float] | None
    if kind == NPY:
        batch = _decode_npy(body)
    else:
        batch = _vectorised_csv(body) if kind == CSV and size >= _VECTORISED_CSV_BYTES else None
        if batch is None:
            text = _text(body)
            batch = _decode_csv(text) if kind == CSV else _decode_json(text)
            if isinstance(batch, list):  # one row of Python numbers: the latency-critical case
                batch = Batch(None, None, None, batch, text)
    return check(batch, schema) if schema is not None else batch


def check(batch: Batch, schema: Schema) -> Batch:
    """Rows as C-contiguous float32 in the schema's feature order. Raises: PayloadError."""
    if batch.schema is schema:
        return batch
    if batch.values is None:
        if batch.row is None:  # a Batch holds values, a row, or both
            raise PayloadError("empty_body", "the batch holds no rows")
        return _check_row(batch.row, schema)
    values = batch.values
    if values.ndim != 2:
        raise PayloadError("bad_shape", f"expected rows of features, got an array of shape {values.shape}")
    if values.shape[0] == 0:
        raise PayloadError("no_rows", "the request holds no rows")
    if batch.columns is not None:
        values = values[:, _column_order(batch.columns, schema.feature_names)]
    if values.shape[1] != schema.n_features:
        raise PayloadError("wrong_feature_count",
                           f"rows have {values.shape[1]} values; the model takes {schema.n_features} "
                           f"({', '.join(schema.feature_names)})")
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = np.ascontiguousarray(values, dtype=np.float32)
    if not np.isfinite(x32).all():
        _raise_non_finite(values, x32, schema)
    return Batch(x32, None, schema)


def _check_row(values: list[float], schema: Schema) -> Batch:
    """check() for one row of Python floats, without numpy until the end."""
    n = len(values)
    if n == schema.n_features:
        try:
            row = list(_float32_struct(n).unpack(_float32_struct(n).pack(*values)))  # rounds like astype(float32)
        except (OverflowError, struct.error):
            row = None
        if row is not None and (math.isfinite(sum(row)) or (schema.allow_nan and not any(map(math.isinf, row)))):
            return Batch(np.array([row], dtype=np.float32), None, schema, row)
    return check(Batch(np.array([values], dtype=np.float64)), schema)  # raises with the row and column


@lru_cache(maxsize=8)
def _float32_struct(n: int) -> struct.Struct:
    return struct.Struct(f"={n}f")


def encode(prediction, accept: str | None) -> tuple[str, str]:
    """Predictions to (body, content type): JSON {"predictions": [...]} or one CSV line per row."""
    kind = _choose_accept(accept)
    values = prediction.tolist() if isinstance(prediction, np.ndarray) else [float(v) for v in prediction]
    if kind == CSV:  # one repr a line; map() spares a Python frame a value (a batch job's 30,000-row answers)
        return ("\n".join(map(repr, values)) + "\n" if values else ""), CSV
    if len(values) == 1 and math.isfinite(values[0]):
        return f'{{"predictions": [{values[0]!r}]}}', JSON
    return '{"predictions": ' + json.dumps(values) + "}", JSON


def _choose_accept(accept: str | None) -> str:
    if not accept or not accept.strip():
        return JSON
    for item in accept.split(","):
        kind = media_type(item)
        if kind in ACCEPTS:
            return kind
        if kind in _WILDCARD_ACCEPTS:
            return _WILDCARD_ACCEPTS[kind]
    raise PayloadError("unsupported_accept", f"cannot answer in {accept!r}; accept one of {', '.join(ACCEPTS)}",
                       status_code=406)


def _size(body) -> int:
    if isinstance(body, str):
        return len(body) if body.isascii() else len(body.encode("utf-8", "surrogatepass"))
    if isinstance(body, bytes):
        return len(body)
    raise PayloadError("bad_shape", f"the body must be bytes or text, not {type(body).__name__}")


def _text(body) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("bad_encoding", f"the body is not UTF-8 text (byte {exc.start})") from None


def _decode_csv(text: str) -> Batch | list[float]:
    text = text.strip()
    if "\n" not in text:  # one row: the common case, kept cheap
        try:
            return [float(cell) for cell in text.split(",")]
        except ValueError:
            return Batch(_csv_rows_checked(text))
    try:
        values = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2, dtype=np.float64, comments=None)
    except ValueError:
        values = _csv_rows_checked(text)
    return Batch(values)


def _vectorised_csv(body) -> Batch | None:
    """csv_numbers' rows of an ASCII body, or None: the text path then gives the same values or the error."""
    if not body.isascii():
        return None
    values = csv_numbers.parse(body.encode("ascii") if isinstance(body, str) else body)
    return None if values is None else Batch(values)


def _csv_rows_checked(text: str) -> np.ndarray:
    """Row-by-row parse that names the first bad row and column."""
    rows: list[list[float]] = []
    width = None
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = line.split(",")
        r = len(rows)
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise PayloadError("wrong_feature_count", f"row {r} has {len(cells)} values; row 0 has {width}", row=r)
        row = []
        for c, cell in enumerate(cells):
            try:
                row.append(float(cell))
            except ValueError:
                hint = " (send no header line)" if r == 0 else ""
                raise PayloadError("non_numeric", f"row {r}, column {c}: {cell.strip()[:40]!r} is not a number{hint}",
                                   row=r, column=c) from None
        rows.append(row)
    if not rows:
        raise PayloadError("no_rows", "the request holds no rows")
    return np.array(rows, dtype=np.float64)


def _decode_json(text: str) -> Batch | list[float]:
    try:
        doc = serving_contract.load_json(text)
    except ValueError as exc:
        raise PayloadError("malformed_json", f"the body is not valid JSON: {exc}") from None
    if isinstance(doc, dict):
        if "instances" not in doc:
            raise PayloadError("bad_shape", 'expected {"instances": [[...], ...]}, a row [...], '
                                            'or records [{"feature": value, ...}]')
        rows = doc["instances"]
        if not isinstance(rows, list):
            raise PayloadError("bad_shape", '"instances" must be a list of rows')
    elif isinstance(doc, list):
        rows = doc
    else:
        raise PayloadError("bad_shape", "expected a JSON list of rows or records, or {\"instances\": ...}")
    if not rows:
        raise PayloadError("no_rows", "the request holds no rows")
    first = rows[0]
    if isinstance(first, dict):
        return _records(rows)
    if not isinstance(first, list):
        rows = [rows]  # a single row [v1, v2, ...]
    if len(rows) == 1 and isinstance(rows[0], list) and all(type(v) is float or type(v) is int for v in rows[0]):
        try:
            return [float(v) for v in rows[0]]
        except OverflowError:  # an integer beyond float64: the checked path names it
            pass
    if "true" not in text and "false" not in text:  # JSON booleans are not feature values
        try:
            values = np.array(rows)
        except (ValueError, TypeError):
            values = None
        if values is not None and values.dtype.kind in "fi" and values.ndim == 2:
            return Batch(values.astype(np.float64, copy=False))
    return Batch(_json_rows_checked(rows))


def _json_rows_checked(rows: list) -> np.ndarray:
    width = len(rows[0]) if isinstance(rows[0], list) else None
    out = []
    for r, row in enumerate(rows):
        if not isinstance(row, list):
            raise PayloadError("bad_shape", f"row {r} is a {type(row).__name__}, not a list of values", row=r)
        if len(row) != width:
            raise PayloadError("wrong_feature_count", f"row {r} has {len(row)} values; row 0 has {width}", row=r)
        out.append([_number(v, r, c) for c, v in enumerate(row)])
    return np.array(out, dtype=np.float64)


def _records(rows: list) -> Batch:
    """Records keyed like the first one; check() then holds the names against the model's."""
    names = tuple(rows[0])
    known = set(names)
    out = []
    for r, record in enumerate(rows):
        if not isinstance(record, dict):
            raise PayloadError("bad_shape", f"row {r} is a {type(record).__name__}, not a record", row=r)
        if len(record) != len(names) or not known.issuperset(record):
            unknown = [k for k in record if k not in known]
            if unknown:
                raise PayloadError("unknown_feature", f"row {r}: feature {unknown[0]!r} is not in row 0",
                                   row=r, column=unknown[0])
            missing = next(k for k in names if k not in record)
            raise PayloadError("missing_feature", f"row {r}: missing feature {missing!r}", row=r, column=missing)
        out.append([_number(record[name], r, name) for name in names])
    return Batch(np.array(out, dtype=np.float64), names)


def _number(value, row: int, column) -> float:
    if value is None:
        return math.nan  # JSON null: a missing value, allowed only if the model was trained with them
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError("non_numeric", f"row {row}, column {column!r}: {value!r} is not a number",
                           row=row, column=column)
    try:
        return float(value)
    except OverflowError:
        raise PayloadError("out_of_range", f"row {row}, column {column!r}: {value} is beyond float32's range",
                           row=row, column=column) from None


def _decode_npy(body) -> Batch:
    if isinstance(body, str):
        raise PayloadError("malformed_npy", "application/x-npy bodies must be binary (.npy bytes)")
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise PayloadError("malformed_npy", f"the body is not a .npy array: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in _NUMBER_KINDS:
        raise PayloadError("non_numeric", f"the array's dtype {getattr(array, 'dtype', None)} is not numeric")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise PayloadError("bad_shape", f"the array has shape {array.shape}; expected (rows, features)")
    return Batch(array.astype(np.float64, copy=False))


def _column_order(columns: tuple[str, ...], names: tuple[str, ...]) -> list[int]:
    index = {name: i for i, name in enumerate(columns)}
    unknown = [c for c in columns if c not in set(names)]
    if unknown:
        raise PayloadError("unknown_feature", f"unknown feature {unknown[0]!r}; the features are {', '.join(names)}",
                           column=unknown[0])
    missing = [n for n in names if n not in index]
    if missing:
        raise PayloadError("missing_feature", f"missing feature {missing[0]!r}", column=missing[0])
    return [index[n] for n in names]


def _raise_non_finite(values: np.ndarray, x32: np.ndarray, schema: Schema):
    bad = ~np.isfinite(x32)
    if schema.allow_nan:
        bad &= ~np.isnan(x32)
        if not bad.any():
            return
    r, c = (int(i) for i in np.argwhere(bad)[0])
    column = schema.feature_names[c]
    original = float(values[r, c])
    if math.isnan(original):
        raise PayloadError("missing_value", f"row {r}, column {c} ({column}): NaN, but the model was trained "
                           "without missing values", row=r, column=c)
    if math.isinf(original):
        raise PayloadError("non_finite", f"row {r}, column {c} ({column}): {original} is not a finite number",
                           row=r, column=c)
    raise PayloadError("out_of_range", f"row {r}, column {c} ({column}): {original!r} is beyond float32's range "
                       "(about ±3.4e38)", row=r, column=c)
