"""Smoke-test data recorded at training time, and the exact comparison every target runs.

`evaluate.py` writes `smoke.json` next to `evaluation.json`: a few rows of the test split as a
`text/csv` request body and the predictions the model gave for them (repr floats, so float64 survives
JSON exactly). The model package points at it through CustomerMetadataProperties
`greenlight:smoke-test` (SMOKE_KEY), so the deployer fetches a few hundred bytes, not the model. A
target sends `body` to the deployed version and `check` compares the answer with `predictions`
bit for bit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from greenlight.errors import DataError

__all__ = ["SMOKE_FORMAT", "SMOKE_KEY", "SmokeTest", "SmokeMismatch"]

SMOKE_KEY = "greenlight:smoke-test"
SMOKE_FORMAT = "greenlight-smoke/1"


class SmokeMismatch(Exception):
    """The deployed version answered the smoke rows with other predictions (or an unreadable answer)."""


@dataclass(frozen=True)
class SmokeTest:
    """A `text/csv` body of a few rows and the exact predictions the model gave for them."""

    body: str
    predictions: tuple[float, ...]
    content_type: str = "text/csv"
    accept: str = "application/json"

    @classmethod
    def from_json(cls, data: bytes | str, where: str) -> SmokeTest:
        """Parse smoke.json. Raises: DataError naming `where` and what is wrong."""
        try:
            doc = json.loads(data)
            if doc.get("format") != SMOKE_FORMAT:
                raise ValueError(f"format {doc.get('format')!r} is not {SMOKE_FORMAT!r}")
            predictions = tuple(float(p) for p in doc["predictions"])
            body = str(doc["body"])
            if not predictions or len(body.strip().splitlines()) != len(predictions):
                raise ValueError("it needs one prediction per row of its body")
            return cls(body, predictions, str(doc.get("content_type", "text/csv")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"smoke-test data at {where} is not usable: {exc}") from None

    def to_json(self) -> str:
        return json.dumps({"format": SMOKE_FORMAT, "content_type": self.content_type, "body": self.body,
                           "predictions": list(self.predictions)}, indent=2)

    def check(self, answer: bytes | str | Sequence[float]) -> None:
        """Compare an answer ({"predictions": [...]} JSON, or the numbers) with the recorded predictions.

        Raises:
            SmokeMismatch: naming the first row that differs, both values, and how many differ.
        """
        if isinstance(answer, (bytes, str)):
            try:
                doc = json.loads(answer)
                got = [float(v) for v in (doc["predictions"] if isinstance(doc, dict) else doc)]
            except (ValueError, KeyError, TypeError) as exc:
                text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
                raise SmokeMismatch(f"the answer is not a list of predictions ({exc}): {text[:200]!r}") from None
        else:
            got = [float(v) for v in answer]
        if len(got) != len(self.predictions):
            raise SmokeMismatch(f"{len(got)} predictions for {len(self.predictions)} smoke rows")
        wrong = [i for i, (a, b) in enumerate(zip(got, self.predictions, strict=True))
                 if not (a == b or (math.isnan(a) and math.isnan(b)))]
        if wrong:
            i = wrong[0]
            raise SmokeMismatch(f"{len(wrong)} of {len(got)} smoke predictions differ from the ones recorded at "
                                f"training; row {i}: got {got[i]!r}, recorded {self.predictions[i]!r}")
