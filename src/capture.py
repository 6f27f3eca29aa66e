"""Capture: a sampled record of what the model served, as one JSON line per request (stdlib only).

    capture.predicted(predict, data, model)   predict(data, model), recorded (inference.predict_fn's hook)
    capture.serving_as("lambda")              this copy of the serving code serves that target
    capture.flush()                           write what is pending now (exit, tests)
    capture.start_lambda_extension()          in Lambda's init: write each invocation's records after its answer
    capture.answered()                        the Lambda handler has its answer (lambda_handler's last step)

Every serving path runs inference.predict_fn, so one hook covers the SageMaker container (endpoint and
Batch Transform), the Lambda handler, and locally the endpoint, the Lambda front and the batch runner.
Settings come from the environment at the first request, and again at most every RECHECK seconds while
capture is off (`configure` overrides them in tests):

    GREENLIGHT_CAPTURE              where records go: "stdout" (on AWS: CloudWatch Logs, set by the model
                                    package and the stack), a directory (local hosts: one <target>.jsonl in
                                    GREENLIGHT_HOME/capture/<group>), or unset/"off": nothing is captured
    GREENLIGHT_CAPTURE_SAMPLE_RATE  share of requests recorded, 0 to 1 (default 1)
    GREENLIGHT_CAPTURE_MAX_ROWS     input rows kept per record, evenly spaced over a bigger request (default 100)
    GREENLIGHT_CAPTURE_TARGET       endpoint | lambda | batch; default: lambda in Lambda, batch where
                                    SAGEMAKER_BATCH=true (SageMaker Batch Transform, the local runner), else endpoint
    GREENLIGHT_MODEL_VERSION        <group>/<N> where the deployer sets it (the Lambda); else null, and the
                                    monitor finds the version by model_sha256
    GREENLIGHT_STAGE                the deployment stage; null until stages exist

A record: {"greenlight_capture": 1, "time": "<ISO 8601 UTC>", "target", "stage", "model_version",
"model_sha256", "inference_id", "status" (200, or the PayloadError's 4xx when predict_fn refused the rows),
"error" (its code, else null), "rows" (in the request), "features", "inputs" (at most MAX_ROWS rows, in the
model's feature order), "predictions" (for those rows), "sample_rate", "dropped" (records lost since the last
one written)}.

The request path pays a sampling draw, a clock read and a deque append; a writer thread turns pending
records into lines every WRITE_INTERVAL seconds and writes them in one call. For a one-row text request
(payload.Batch with `text`) it holds the text and the prediction as a Python value, not the request's objects,
and decodes the text again when it writes (the same row): holding a request's objects until the writer runs
costs the next requests more than anything else capture does there (decision 0058). While every request is
recorded by a running writer thread, `predicted` holds such a request itself in a few steps (the armed fast
path, `_state.hold`); anything else, and the first request, goes through `_observe` (decision 0061).
In Lambda, whose environment is frozen between invocations and may end without notice, a writer thread's
records could wait frozen; there an internal extension (a thread registered with the Lambda Extensions API in
the init phase) waits for each invocation's `answered()`, writes its records after the answer and only then
asks Lambda for the next event, so nothing is pending when Lambda freezes or ends the environment. Where it
cannot register (no AWS_LAMBDA_RUNTIME_API, an API error) or its thread fails, each record is written at once,
before the answer (decision 0050). No failure here reaches a request: it is counted, logged at most once a
minute, and the request is answered as if capture were off. At most MAX_PENDING records wait; newer ones are
dropped and counted.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import logging
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["CAPTURE_KEY", "TARGETS", "answered", "configure", "flush", "predicted", "reset", "serving_as", "settings",
           "start_lambda_extension"]

logger = logging.getLogger(__name__)

CAPTURE_KEY = "greenlight_capture"  # the first key of every line: what readers filter on
CAPTURE_ENV = "GREENLIGHT_CAPTURE"
RATE_ENV = "GREENLIGHT_CAPTURE_SAMPLE_RATE"
ROWS_ENV = "GREENLIGHT_CAPTURE_MAX_ROWS"
TARGET_ENV = "GREENLIGHT_CAPTURE_TARGET"
VERSION_ENV = "GREENLIGHT_MODEL_VERSION"
STAGE_ENV = "GREENLIGHT_STAGE"
TARGETS = ("endpoint", "lambda", "batch")
DEFAULT_MAX_ROWS = 100
WRITE_INTERVAL = 0.2
MAX_PENDING = 10_000
WARN_EVERY = 60.0
_FLOAT_REPR = float.__repr__  # what json writes for a finite float
_ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
MAX_LINE_BYTES = 200_000  # below CloudWatch Logs' 256 KB event limit: rows are halved until a line fits
RECHECK = 0.1
EXTENSION_NAME = "greenlight-capture"
EXTENSIONS_API = "http://{api}/2020-01-01/extension"  # AWS_LAMBDA_RUNTIME_API is host:port
EXTENSION_TIMEOUT = 5.0  # seconds for a register call; the next-event call waits as long as Lambda makes it
EXTENSION_NICE = 19  # the extension thread's nice value: it yields the CPU to the runtime and the Runtime API
ANSWER_POLL = 1.0  # seconds between the extension's looks at its pending event/next while no answer comes


class Settings:
    """What is captured and where; read once (see the module docstring)."""

    __slots__ = ("sink", "rate", "max_rows", "target", "model_version", "stage", "synchronous", "after_answer")

    def __init__(self, sink, rate, max_rows, target, model_version, stage, synchronous, after_answer=False):
        self.sink, self.rate, self.max_rows, self.target = sink, rate, max_rows, target
        self.model_version, self.stage, self.synchronous = model_version, stage, synchronous
        self.after_answer = after_answer  # records wait for answered() and the Lambda extension's write

    @property
    def enabled(self) -> bool:
        return self.sink is not None and self.rate > 0


def _number(environ, name: str, default, kind, low, high):
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
        if low <= value <= high:
            return value
    except ValueError:
        pass
    logger.warning("ignoring %s=%r: not a number from %s to %s; using %s", name, raw, low, high, default)
    return default


def _resolve(environ, overrides: dict) -> Settings:
    sink = overrides.get("sink", environ.get(CAPTURE_ENV) or None)
    if sink is not None and sink.strip().lower() in ("", "off", "none", "0", "false"):
        sink = None
    target = overrides.get("target") or environ.get(TARGET_ENV) or (
        "lambda" if environ.get("AWS_LAMBDA_FUNCTION_NAME") else
        "batch" if environ.get("SAGEMAKER_BATCH", "").lower() == "true" else "endpoint")
    if target not in TARGETS:
        logger.warning("ignoring %s=%r: not one of %s; using endpoint", TARGET_ENV, target, ", ".join(TARGETS))
        target = "endpoint"
    return Settings(
        sink=sink,
        rate=overrides.get("rate", _number(environ, RATE_ENV, 1.0, float, 0.0, 1.0)),
        max_rows=overrides.get("max_rows", _number(environ, ROWS_ENV, DEFAULT_MAX_ROWS, int, 1, 100_000)),
        target=target,
        model_version=overrides.get("model_version", environ.get(VERSION_ENV) or None),
        stage=overrides.get("stage", environ.get(STAGE_ENV) or None),
        synchronous=overrides.get("synchronous", bool(environ.get("AWS_LAMBDA_FUNCTION_NAME"))),
        after_answer=overrides.get("after_answer", _state.extension is not None),
    )


class _State:
    def __init__(self) -> None:
        self.overrides: dict = {}
        self.settings: Settings | None = None
        self.pending: collections.deque = collections.deque()
        self.lock = threading.Lock()
        self.writer: threading.Thread | None = None
        self.dropped = 0
        self.failures = 0
        self.last_warning = -math.inf
        self.recheck_at = -math.inf
        self.constant: dict = {}
        self.second: tuple[int, str] = (-1, "")
        self.process_id = os.urandom(6).hex()  # inference ids: this prefix and a counter
        self.counter = itertools.count(1)
        self.extension: threading.Thread | None = None  # the Lambda extension's thread, once registered
        self.answer = threading.Event()  # set by answered(): the invocation's records may be written
        # pending.append while the writer thread's path is armed: predicted()'s fast path
        self.hold: Callable[[Any], None] | None = None


_state = _State()


def settings() -> Settings:
    """The settings in force (read from the environment on first use)."""
    current = _state.settings
    if current is None:
        current = _state.settings = _resolve(os.environ, _state.overrides)
        _arm(current)
    return current


def _arm(current: Settings) -> None:
    """Arm predicted()'s fast path (every request recorded by the running writer thread) or disarm it."""
    writer = _state.writer
    writer_path = (current.sink is not None and current.rate >= 1.0 and not current.synchronous
                   and not current.after_answer and writer is not None and writer.is_alive())
    _state.hold = _state.pending.append if writer_path else None


def _forget() -> None:
    """Settings to be read again at the next request; the fast path disarmed until then."""
    _state.hold = None
    _state.settings = None


def _reread() -> Settings:
    """The settings again: while capture is off the environment is read again at most every RECHECK seconds,
    so a host that turns capture on after this code served (a smoke test in the same process) is obeyed."""
    _forget()
    _state.recheck_at = time.monotonic() + RECHECK
    return settings()


def configure(**overrides) -> Settings:
    """Override settings (sink, rate, max_rows, target, model_version, stage, synchronous, after_answer); the rest
    from env."""
    _state.overrides.update(overrides)
    _forget()
    return settings()


def serving_as(target: str) -> None:
    """Name the target this copy of the serving code serves (the Lambda handler calls it at import)."""
    configure(target=target)


def reset() -> None:
    """Forget overrides, settings and pending records (tests)."""
    with _state.lock:
        _state.overrides.clear()
        _forget()
        _state.pending.clear()
        _state.dropped = _state.failures = 0
        _state.recheck_at = -math.inf
        _state.constant.clear()
        _state.extension = None
        _state.answer.clear()


def predicted(predict, data, model):
    """predict(data, model), with a capture record of the request when it is sampled; never fails because of
    capture (inference.predict_fn is `return capture.predicted(_predict, data, model)`)."""
    try:
        out = predict(data, model)
    except Exception as exc:
        _observe(data, None, model, exc)
        raise
    hold = _state.hold
    if hold is not None:  # the writer thread's path, every request recorded: a one-row text request in a few steps
        try:
            text = data.text
            if text is not None and len(_state.pending) < MAX_PENDING:
                hold((time.time(), text, out.item(), model, None, type(data)))  # as _observe holds it
                return out
        except Exception:  # noqa: BLE001, S110 - not a one-row text request: _observe's general path
            pass
    _observe(data, out, model, None)
    return out


def _observe(data, out, model, error) -> None:
    try:
        current = _state.settings
        if current is None or (current.sink is None and time.monotonic() >= _state.recheck_at):
            current = _reread()
        if current.sink is None or (current.rate < 1.0 and random.random() >= current.rate):
            return
        if current.after_answer:  # written by the Lambda extension once the answer is out (or by flush)
            if len(_state.pending) >= MAX_PENDING:
                _state.dropped += 1
            else:
                _state.pending.append((time.time(), data, out, model, error))
        elif current.synchronous:
            _write([(time.time(), data, out, model, error)], current)
        elif len(_state.pending) >= MAX_PENDING:
            _state.dropped += 1
        else:
            text = getattr(data, "text", None)
            if text is not None and error is None and getattr(out, "shape", None) == (1,):
                # a one-row text request: hold its text and its prediction as a Python value, not the request's
                # objects, which holding until the writer runs would cost the next requests (decision 0058)
                _state.pending.append((time.time(), text, out.item(), model, None, type(data)))
            else:
                _state.pending.append((time.time(), data, out, model, error))
            if _state.writer is None:
                _start_writer()
    except Exception as exc:  # noqa: BLE001 - capture never fails a request
        _failed(exc)


def _start_writer() -> None:
    with _state.lock:
        if _state.writer is None:
            _state.writer = threading.Thread(target=_write_forever, name="greenlight-capture", daemon=True)
            _state.writer.start()  # if it cannot start, it is not tried again, nor is the fast path armed
    _arm(settings())


def _write_forever() -> None:
    me = threading.current_thread()
    while True:
        time.sleep(WRITE_INTERVAL)
        if _state.writer is not me:  # replaced (tests): the new writer writes
            return
        flush()


def flush() -> None:
    """Write every pending record now."""
    with _state.lock:
        items = []
        while _state.pending:
            items.append(_state.pending.popleft())
        if items:
            _write(items, settings())


def _write(items, current: Settings) -> None:
    try:
        lines = []
        for item in items:
            lines.append(_line(item, current))
        text = "".join(lines)
        if current.sink == "stdout":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            os.makedirs(current.sink, exist_ok=True)
            fd = os.open(os.path.join(current.sink, f"{current.target}.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                         0o644)
            try:
                os.write(fd, text.encode("utf-8"))  # one append: whole lines, even with other writers
            finally:
                os.close(fd)
    except Exception as exc:  # noqa: BLE001 - the records are lost, the requests are not
        _state.dropped += len(items)
        _failed(exc)


def _line(item, current: Settings) -> str:
    """One record as a JSON line; the fields constant for a model and settings are serialised once."""
    if len(item) == 6:  # a one-row text request held as its text: decoded again, the same row
        when, text, value, model, error, kind = item
        data, out = kind.from_text(text), [value]
    else:
        when, data, out, model, error = item
    constant = _constant(model, current)
    names = constant[0]
    status = 200 if error is None else int(getattr(error, "status_code", 500) or 500)
    code = "null" if error is None else json.dumps(str(getattr(error, "error", None) or type(error).__name__))
    rows = 0
    inputs: list[list[float]] = []
    predictions: list[float] = []
    if error is None:
        rows, keep, inputs = _rows(data, names, current.max_rows)
        predictions = _floats(out, keep, rows)
    dropped, _state.dropped = _state.dropped, 0
    seconds = int(when)
    if _state.second[0] != seconds:  # records of one second share its formatted date and time
        _state.second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    stamp = f"{_state.second[1]}.{int((when - seconds) * 1e6):06d}Z"
    head = (f'{{"{CAPTURE_KEY}":1,"time":"{stamp}",{constant[1]},"inference_id":"{_state.process_id}-'
            f'{next(_state.counter):x}","status":{status},"error":{code},"rows":{rows},{constant[2]},')
    tail = f',"sample_rate":{constant[3]},"dropped":{dropped}}}\n'
    line = head + _dumps(inputs, predictions) + tail
    while len(line) > MAX_LINE_BYTES and inputs:  # CloudWatch Logs takes events up to 256 KB
        half = len(inputs) // 2  # every other row; none once one row alone is too big
        inputs, predictions = inputs[::2][:half], predictions[::2][:half]
        line = head + _dumps(inputs, predictions) + tail
    return line


def _constant(model, current: Settings) -> tuple:
    """(feature names, the JSON of target..model_sha256, of features, of the sample rate) for this model and
    settings."""
    key = (id(model), id(current))
    cached = _state.constant.get(key)
    if cached is None or cached[0] is not model or cached[1] is not current:
        names = _feature_names(model)
        middle = json.dumps({"target": current.target, "stage": current.stage, "model_version": current.model_version,
                             "model_sha256": (getattr(model, "metadata", None) or {}).get("model_sha256")},
                            separators=(",", ":"))[1:-1]
        cached = (model, current, names, middle, '"features":' + json.dumps(list(names), separators=(",", ":")),
                  json.dumps(current.rate))
        if len(_state.constant) > 64:
            _state.constant.clear()
        _state.constant[key] = cached
    return cached[2:]


def _dumps(inputs: list, predictions: list) -> str:
    """'"inputs":[...],"predictions":[...]', a missing value (NaN) as null; floats as json writes them (their
    repr), joined here when every value is a finite float (a finite float's repr has no "n": nan, inf do)."""
    try:
        rows = ",".join(["[" + ",".join(map(_FLOAT_REPR, row)) + "]" for row in inputs])
        values = ",".join(map(_FLOAT_REPR, predictions))
        if "n" not in rows and "n" not in values:
            return f'"inputs":[{rows}],"predictions":[{values}]'
    except TypeError:  # not all floats (an int, None): json's way
        pass
    try:
        return _ENCODE({"inputs": inputs, "predictions": predictions})[1:-1]
    except ValueError:
        inputs = [[None if v != v else v for v in row] for row in inputs]
        predictions = [None if v != v else v for v in predictions]
        return json.dumps({"inputs": inputs, "predictions": predictions}, separators=(",", ":"))[1:-1]


def _feature_names(model) -> tuple:
    schema = getattr(model, "schema", None)
    names = getattr(schema, "feature_names", None)
    if names is None:
        names = (getattr(model, "metadata", None) or {}).get("feature_names") or ()
    return tuple(names)


def _floats(values, keep: list[int], n: int) -> list:
    """The predictions of the kept rows (none if they are not one per row)."""
    if values is None or len(values) != n:
        return []
    if n > len(keep):
        values = values[keep] if hasattr(values, "take") else [values[i] for i in keep]
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    return values if isinstance(values, list) else [values]


def _rows(data, names: tuple, bound: int) -> tuple[int, list[int], list[list[float]]]:
    """(rows in the request, the kept rows' indices, those rows in the model's feature order); only the kept
    rows are converted (a request's named JSON columns may come in any order)."""
    values = getattr(data, "values", data)
    if values is None:
        row = getattr(data, "row", None)
        values = [] if row is None else [row]
    if getattr(values, "ndim", 2) == 1:
        values = values.reshape(1, -1)
    n = len(values)
    keep = list(_spread(n, bound))
    if hasattr(values, "tolist"):
        rows = (values[keep] if n > bound else values).tolist()
    else:
        rows = [list(values[i]) for i in keep]
    columns = getattr(data, "columns", None)
    if columns and names and tuple(columns) != tuple(names):
        position = {name: i for i, name in enumerate(columns)}
        rows = [[row[position[name]] for name in names] for row in rows]
    return n, keep, rows


def _spread(n: int, bound: int) -> range | list[int]:
    """Indices of at most `bound` rows evenly spaced over n."""
    return range(n) if n <= bound else [i * n // bound for i in range(bound)]


def answered() -> None:
    """The Lambda handler has its answer: the extension may now write this invocation's records (an Event.set)."""
    if _state.extension is not None:
        _state.answer.set()


def start_lambda_extension(environ=os.environ) -> bool:
    """Register the internal Lambda extension that writes each invocation's records after its answer (True), in
    the init phase only: registration closes when the runtime first asks for an invocation. False when capture
    is off, outside Lambda, or registration fails (a warning): each record is then written before its answer."""
    api = environ.get("AWS_LAMBDA_RUNTIME_API")
    if _state.extension is not None or not api or not settings().enabled:
        return _state.extension is not None
    import urllib.request  # only here: the endpoint and batch never load it

    base = EXTENSIONS_API.format(api=api)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the runtime API is local: no proxy
    try:
        request = urllib.request.Request(f"{base}/register", data=b'{"events":["INVOKE"]}', method="POST",
                                         headers={"Lambda-Extension-Name": EXTENSION_NAME})
        with opener.open(request, timeout=EXTENSION_TIMEOUT) as response:
            identifier = response.headers.get("Lambda-Extension-Identifier")
        if not identifier:
            raise ValueError("the register answer has no Lambda-Extension-Identifier")
    except Exception as exc:  # noqa: BLE001 - capture falls back to writing before the answer
        logger.warning("capture: cannot register the Lambda extension at %s (%s: %s); each record is written "
                       "before its answer instead", base, type(exc).__name__, exc)
        return False
    _state.extension = threading.Thread(target=_extension_loop, args=(api, identifier),
                                        name=EXTENSION_NAME, daemon=True)
    _forget()  # the settings now say after_answer
    _state.extension.start()
    logger.info("capture: records are written after each answer by the Lambda extension %s", EXTENSION_NAME)
    return True


def _extension_loop(api: str, identifier: str) -> None:
    """Ask Lambda for the next event, then wait for answered() before reading it; write, ask again. Lambda freezes or
    ends the environment only once this thread has asked, so no written-later record is pending then.

    The INVOKE event reaches this thread when the invocation starts; it is read only after the answer, so the thread
    sleeps through the handler (on one GIL, reading it then would cost the request). While no answer comes, every
    ANSWER_POLL seconds the thread looks whether an event waits (a long invocation: bound the wait by its deadline;
    an error answer: stop); one keep-alive connection to the Extensions API serves every call."""
    import http.client

    _lowest_priority()
    connection = http.client.HTTPConnection(api)  # no timeout: next blocks while the environment is idle or frozen
    headers = {"Lambda-Extension-Identifier": identifier}
    try:
        while True:
            connection.request("GET", "/2020-01-01/extension/event/next", headers=headers)
            event, deadline = None, math.inf
            while not _state.answer.wait(ANSWER_POLL):
                if event is None and _waiting(connection):  # a long invocation or an error: read what came
                    event = _next_event(connection)
                    if event.get("eventType") != "INVOKE":
                        break
                    at = event.get("deadlineMs")
                    deadline = at / 1000 if isinstance(at, (int, float)) else math.inf
                if time.time() >= deadline:
                    break
            if event is None:
                event = _next_event(connection)  # arrived when the invocation started
            if event.get("eventType") != "INVOKE":  # SHUTDOWN reaches external extensions only; write and end
                flush()
                return
            _state.answer.clear()
            flush()
    except Exception as exc:  # noqa: BLE001 - from now on each record is written before its answer
        if _state.extension is threading.current_thread():
            _state.extension = None
            _forget()
        _failed(exc)
        flush()
    finally:
        connection.close()


def _lowest_priority() -> None:
    """This thread at the lowest CPU priority, so its work after an answer never delays the answer on its way out
    (through the runtime and Lambda's Runtime API, on the same CPUs); on Linux the nice value is per thread
    (setpriority(2)). Where it cannot be set, nothing changes."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), EXTENSION_NICE)
    except (AttributeError, OSError) as exc:  # not Linux, or refused
        logger.info("capture: the Lambda extension's thread keeps its CPU priority (%s)", exc)


def _waiting(connection) -> bool:
    """Whether the Extensions API's answer to the pending call has (begun to) come."""
    import select

    sock = connection.sock
    return sock is None or bool(select.select([sock], [], [], 0)[0])


def _next_event(connection) -> dict:
    """The answer to the pending event/next call. Raises: OSError, http.client.HTTPException, ValueError."""
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise ValueError(f"event/next answered {response.status}: {body[:200]!r}")
    event = json.loads(body or b"{}")
    if not isinstance(event, dict):
        raise ValueError(f"event/next answered a JSON {type(event).__name__}")
    return event


def _failed(exc: BaseException) -> None:
    _state.failures += 1
    now = time.monotonic()
    if now - _state.last_warning >= WARN_EVERY:
        _state.last_warning = now
        logger.warning("capture failed (%d failure(s) so far; requests are unaffected): %s: %s",
                       _state.failures, type(exc).__name__, exc)


def _after_fork() -> None:
    """A forked worker starts with no writer thread, nothing pending of its parent's, and its own id prefix."""
    _state.writer = None
    _state.hold = None  # it appended to the parent's queue
    _state.extension = None  # not a Lambda extension: Lambda waits for the parent's
    _state.lock = threading.Lock()
    _state.pending = collections.deque()
    _state.process_id = os.urandom(6).hex()


os.register_at_fork(after_in_child=_after_fork)
atexit.register(flush)
