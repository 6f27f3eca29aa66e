"""One mini-batch through the model's own code: what a Batch Transform container does with a request.

`transform_unit` takes whole CSV lines (one unit of work), sends them to the model's `input_fn` ->
`predict_fn` -> `output_fn` as SageMaker would (MultiRecord: the unit is one request; SingleRecord:
one request per line), and assembles the answer with AssembleWith Line: one output line per record,
the prediction alone or, with JoinSource Input, appended to its input line after a comma. Pure but
for the model's code: no disk, no processes (the worker process and the unit tests both call it).

A record the model refuses (a PayloadError, i.e. an exception with a 4xx `status_code`, or a plain
ValueError from older serving code) is a bad row: it is reported with its line offset in the unit
and the model's message for that line sent alone (so the reason reads the same in both strategies,
and a row the model names inside a mini-batch is confirmed before it is dropped), and the rest of
the unit goes on without it, until more than `budget` bad rows are found. A skipped line keeps its
place in the output: an empty line (with JoinSource Input, the input line, a comma and nothing), so
output line k always answers input line k. An empty input line is a bad row too (the model's CSV
reader would silently skip it). Any other exception is the model's fault and propagates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["CSV", "ModelOutputError", "UnitResult", "is_client_error", "transform_unit"]

CSV = "text/csv"
# A newline followed by a newline, CR, space or tab, found in one regex pass: four `bytes in` scans
# cost the worker a tenth of its CPU on a large job (record 0055).
_MAYBE_BLANK = re.compile(rb"\n[\n\r \t]")


class ModelOutputError(RuntimeError):
    """The model's output_fn did not answer one CSV line per record."""


@dataclass
class UnitResult:
    """What one unit gave: records read, output bytes, bad rows as (line offset, reason)."""

    records: int
    output: bytes
    bad: list[tuple[int, str]] = field(default_factory=list)
    exceeded: bool = False  # more than `budget` bad rows: the unit stopped early


def _may_have_blank_line(data: bytes) -> bool:
    """False when no line can be empty (cheap substring scans; True sends the unit the careful way)."""
    return data[:1] in (b"\n", b"\r", b" ", b"\t") or _MAYBE_BLANK.search(data) is not None


def is_client_error(exc: BaseException) -> bool:
    """A request the model refused (PayloadError's 4xx status_code, or a bare ValueError)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return 400 <= status < 500
    return isinstance(exc, ValueError)


def reason_of(exc: BaseException) -> str:
    """The model's message, without the 'row N, ' prefix that counts rows inside one request."""
    message = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    row = getattr(exc, "row", None)
    if isinstance(row, int):
        for prefix in (f"row {row}, ", f"row {row}: ", f"row {row} "):
            if message.startswith(prefix):
                return message[len(prefix):]
    return message


def transform_unit(code, model, data: bytes, *, single_record: bool, join_input: bool,
                   budget: int) -> UnitResult:
    """Run one unit of whole lines (see the module docstring). Raises: ModelOutputError, model bugs."""
    records = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    if not single_record and not join_input and not _may_have_blank_line(data):
        try:
            return UnitResult(records, _predict_lines(code, model, data, records))
        except Exception as exc:  # noqa: BLE001 - sorted out below, line by line
            if not is_client_error(exc):
                raise
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    result = UnitResult(records, b"")
    good: list[int] = []
    for offset, line in enumerate(lines):
        if line.strip():
            good.append(offset)
        else:  # not a reason to stop yet: a bad row earlier in the unit must be found first
            result.bad.append((offset, "the line is empty"))
    if single_record:
        outputs = _one_by_one(code, model, lines, good, result, budget)
    else:
        outputs = _as_mini_batch(code, model, lines, good, result, budget)
    if outputs is None or result.exceeded or len(result.bad) > budget:
        result.exceeded = True
        result.bad.sort()
        return result
    result.bad.sort()
    kept, predictions = outputs
    answers = [b""] * len(lines)  # a skipped line keeps its place, with an empty prediction
    for offset, prediction in zip(kept, predictions, strict=True):
        answers[offset] = prediction
    if join_input:
        result.output = b"".join(line.rstrip(b"\r") + b"," + p + b"\n" for line, p in zip(lines, answers, strict=True))
    else:
        result.output = b"".join(p + b"\n" for p in answers)
    return result


def _bad(result: UnitResult, offset: int, reason: str, budget: int) -> bool:
    """Record a bad row; True when the unit must stop: more than `budget` bad rows up to this line."""
    result.bad.append((offset, reason))
    if sum(1 for o, _ in result.bad if o <= offset) > budget:
        result.exceeded = True
        return True
    return False


def _as_mini_batch(code, model, lines, good, result, budget):
    """One request for all good lines; a refused row (named by the model) is dropped and the rest resent."""
    good = list(good)
    while good:
        body = b"\n".join(lines[i] for i in good) + b"\n"
        try:
            text = _predict_lines(code, model, body, len(good))
            return good, text.split(b"\n")[:-1]
        except Exception as exc:  # noqa: BLE001 - client errors are bad rows, the rest propagates
            if not is_client_error(exc):
                raise
            row = getattr(exc, "row", None)
            alone = _refusal(code, model, lines[good[row]]) if isinstance(row, int) and 0 <= row < len(good) else None
            if alone is None:  # the model did not say which row, or the row it named passes alone
                return _one_by_one(code, model, lines, good, result, budget)
            offset = good.pop(row)
            if _bad(result, offset, reason_of(alone), budget):
                # The model names the first row of the first check that fails (parsing before
                # values), so rows before this one are checked alone: the report stays in line order.
                _one_by_one(code, model, lines, [g for g in good if g < offset], result, len(lines))
                return None
    return [], []


def _refusal(code, model, line: bytes) -> BaseException | None:
    """The client error the model gives for this line alone, or None if it takes the line."""
    try:
        _predict_lines(code, model, line, 1)
    except Exception as exc:  # noqa: BLE001
        if not is_client_error(exc):
            raise
        return exc
    return None


def _one_by_one(code, model, lines, good, result, budget):
    """One request per line (SingleRecord, or to find which lines a mini-batch's error came from)."""
    kept, predictions = [], []
    for offset in good:
        try:
            text = _predict_lines(code, model, lines[offset], 1)
        except Exception as exc:  # noqa: BLE001
            if not is_client_error(exc):
                raise
            if _bad(result, offset, reason_of(exc), budget):
                return None
            continue
        kept.append(offset)
        predictions.append(text[:-1])
    return kept, predictions


def _predict_lines(code, model, body: bytes, expected: int) -> bytes:
    """input_fn -> predict_fn -> output_fn on one request; the CSV answer, one line per record."""
    out, _ = code.output_fn(code.predict_fn(code.input_fn(body, CSV), model), CSV)
    text = out.encode("utf-8") if isinstance(out, str) else bytes(out)
    if not text.endswith(b"\n"):
        text += b"\n"
    answered = text.count(b"\n")
    if answered != expected:
        raise ModelOutputError(f"the model's output_fn answered {answered} lines for {expected} records")
    return text
