"""Capture records (what src/capture.py writes, one JSON line per request) read back, and durations.

    parse_record(text, target=None)   -> CaptureRecord, or None when the text is not a capture line
    parse_duration("2h")              -> timedelta (--since); ParameterError naming the value otherwise

A line may arrive bare (a local capture file, a SageMaker container's stdout in CloudWatch Logs, a
Lambda's print) or inside a JSON log envelope whose "message" holds it; both are read. Pure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from greenlight.errors import ParameterError

__all__ = ["CAPTURE_KEY", "CaptureRecord", "parse_duration", "parse_record", "parse_version_label"]

CAPTURE_KEY = "greenlight_capture"  # src/capture.py's CAPTURE_KEY
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class CaptureRecord:
    """One captured request: when, where, which model, and its rows (in `features` order) with predictions."""

    time: datetime
    target: str
    stage: str | None
    model_version: str | None  # "<group>/<N>" where the serving side knew it
    model_sha256: str | None
    status: int
    rows: int
    features: tuple[str, ...]
    inputs: tuple[tuple[float | None, ...], ...]
    predictions: tuple[float, ...]

    @property
    def ok(self) -> bool:
        return self.status == 200


def _message(text: str) -> dict | None:
    text = text.strip()
    if CAPTURE_KEY not in text:
        return None
    start = text.find("{")
    try:
        doc = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        return None
    if isinstance(doc, dict) and CAPTURE_KEY not in doc and isinstance(doc.get("message"), str):
        return _message(doc["message"])  # a JSON log envelope around the line
    return doc if isinstance(doc, dict) and doc.get(CAPTURE_KEY) == 1 else None


def parse_record(text: str, target: str | None = None, stage: str | None = None) -> CaptureRecord | None:
    """The capture record in a log line, or None if it holds none (or a damaged one).

    `target` and `stage` fill in the target and the stage where the line does not name them (the reader knows
    the log group or capture file, and so whose it is).
    """
    doc = _message(text)
    if doc is None:
        return None
    try:
        when = datetime.fromisoformat(str(doc["time"]).replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        inputs = tuple(tuple(None if v is None else float(v) for v in row) for row in doc.get("inputs") or ())
        return CaptureRecord(
            time=when.astimezone(UTC),
            target=str(doc.get("target") or target or "endpoint"),
            stage=doc.get("stage") or stage,
            model_version=doc.get("model_version"),
            model_sha256=doc.get("model_sha256"),
            status=int(doc.get("status", 200)),
            rows=int(doc.get("rows", len(inputs))),
            features=tuple(str(f) for f in doc.get("features") or ()),
            inputs=inputs,
            predictions=tuple(float(p) for p in doc.get("predictions") or ()),
        )
    except (KeyError, TypeError, ValueError):
        return None


def parse_version_label(label: str | None, group: str) -> int | None:
    """N from "<group>/<N>" (the label deployers set as GREENLIGHT_MODEL_VERSION); None for another group."""
    if not label:
        return None
    name, _, number = str(label).rpartition("/")
    if name.lower() != group.lower() or not number.isdigit():
        return None
    return int(number)


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '2h', '7d', '1w', '1h30m' as a timedelta.

    Raises:
        ParameterError: not such a duration, or not positive.
    """
    compact = str(text).strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or _DURATION.sub("", compact).strip():
        raise ParameterError(f"bad --since {text!r}: give a duration such as 90s, 30m, 2h, 7d or 1h30m")
    seconds = sum(float(n) * _UNITS[unit] for n, unit in parts)
    if seconds <= 0:
        raise ParameterError(f"bad --since {text!r}: the duration must be longer than zero")
    return timedelta(seconds=seconds)
