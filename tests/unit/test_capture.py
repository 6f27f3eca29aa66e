"""src/capture.py: the sampled capture record every serving path writes through inference.predict_fn."""

from __future__ import annotations

import importlib
import json
import random
import re
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from tests.conftest import imported_src_modules
from tests.unit.test_inference import target_first, train_model

from greenlight.data import default_dataset_csv

SERVING = ("inference", "payload", "capture", "lambda_function", "sagemaker_entry", "train")
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
ROW = [0.0380759, 0.0506801, 0.0616962, 0.0218724, -0.0442235, -0.0348208, -0.0434008, -0.00259226, 0.0199075,
       -0.0176461]


@pytest.fixture(scope="module")
def src_modules():
    with imported_src_modules(SERVING) as modules:
        yield modules


@pytest.fixture(scope="module")
def model(src_modules, tmp_path_factory):
    directory = train_model(src_modules.train, tmp_path_factory.mktemp("capture"), target_first(default_dataset_csv()))
    return src_modules.inference.model_fn(str(directory))


@pytest.fixture
def capture(src_modules, monkeypatch, tmp_path):
    """The capture module, reset, writing to a fresh directory unless a test says otherwise."""
    for name in ("GREENLIGHT_CAPTURE", "GREENLIGHT_CAPTURE_SAMPLE_RATE", "GREENLIGHT_CAPTURE_MAX_ROWS",
                 "GREENLIGHT_CAPTURE_TARGET", "GREENLIGHT_MODEL_VERSION", "GREENLIGHT_STAGE", "SAGEMAKER_BATCH",
                 "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    module = src_modules.capture
    module.reset()
    monkeypatch.setenv("GREENLIGHT_CAPTURE", str(tmp_path / "capture"))
    yield module
    module.reset()


def records(directory, target="endpoint") -> list[dict]:
    path = directory / f"{target}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def serve(src_modules, model, body, content_type="text/csv"):
    inference = src_modules.inference
    return inference.predict_fn(inference.input_fn(body, content_type), model)


def test_a_served_request_is_one_line_with_its_rows_predictions_and_identity(src_modules, model, capture, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("GREENLIGHT_MODEL_VERSION", "greenlight-models/3")
    out = serve(src_modules, model, ",".join(map(repr, ROW)))
    capture.flush()
    [record] = records(tmp_path / "capture")
    assert list(record)[0] == "greenlight_capture" and record["greenlight_capture"] == 1
    assert record["target"] == "endpoint" and record["stage"] is None
    assert record["model_version"] == "greenlight-models/3"
    assert record["model_sha256"] == model.metadata["model_sha256"]
    assert record["status"] == 200 and record["error"] is None
    assert record["rows"] == 1 and record["features"] == FEATURES
    assert record["inputs"] == [ROW]  # as sent; the monitor reads values as float32, as the model does
    assert record["predictions"] == out.tolist()
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", record["inference_id"]) and record["time"].endswith("Z")
    assert abs(datetime.fromisoformat(record["time"]) - datetime.now(UTC)).total_seconds() < 3600


def test_named_json_columns_are_recorded_in_the_models_feature_order(src_modules, model, capture, tmp_path):
    shuffled = list(reversed(FEATURES))
    body = json.dumps([{name: dict(zip(FEATURES, ROW, strict=True))[name] for name in shuffled}] * 2)
    serve(src_modules, model, body, "application/json")
    capture.flush()
    [record] = records(tmp_path / "capture")
    assert record["rows"] == 2
    assert [pytest.approx(v, rel=1e-6) for v in record["inputs"][0]] == ROW


def test_a_big_request_keeps_max_rows_evenly_spread_with_their_own_predictions(src_modules, model, capture, tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("GREENLIGHT_CAPTURE_MAX_ROWS", "10")
    rows = np.random.default_rng(1).normal(0, 0.05, size=(1000, 10))
    out = serve(src_modules, model, "".join(",".join(map(repr, r)) + "\n" for r in rows.tolist()))
    capture.flush()
    [record] = records(tmp_path / "capture")
    assert record["rows"] == 1000 and len(record["inputs"]) == len(record["predictions"]) == 10
    kept = [i * 100 for i in range(10)]
    assert record["inputs"] == rows[kept].tolist()
    assert record["predictions"] == out[kept].tolist()


def test_the_sample_rate_decides_per_request(src_modules, model, capture, tmp_path, monkeypatch):
    monkeypatch.setenv("GREENLIGHT_CAPTURE_SAMPLE_RATE", "0.25")
    random.seed(7)
    for _ in range(400):
        serve(src_modules, model, ",".join(map(repr, ROW)))
    capture.flush()
    kept = records(tmp_path / "capture")
    assert 60 <= len(kept) <= 140  # 100 expected; the binomial's 4-sigma band
    assert {r["sample_rate"] for r in kept} == {0.25}
    assert len({r["inference_id"] for r in kept}) == len(kept)  # one id per request


def test_capture_off_writes_nothing(src_modules, model, capture, tmp_path, monkeypatch):
    for value in ("off", ""):
        monkeypatch.setenv("GREENLIGHT_CAPTURE", value)
        capture.reset()
        serve(src_modules, model, ",".join(map(repr, ROW)))
        capture.flush()
        assert not (tmp_path / "capture").exists()
    monkeypatch.setenv("GREENLIGHT_CAPTURE", str(tmp_path / "capture"))
    monkeypatch.setenv("GREENLIGHT_CAPTURE_SAMPLE_RATE", "0")
    capture.reset()
    serve(src_modules, model, ",".join(map(repr, ROW)))
    capture.flush()
    assert records(tmp_path / "capture") == []


def test_rows_the_model_refuses_are_recorded_with_their_status_and_the_error_still_raised(src_modules, model,
                                                                                         capture, tmp_path):
    with pytest.raises(src_modules.payload.PayloadError) as refused:
        serve(src_modules, model, "1,2,3")
    capture.flush()
    [record] = records(tmp_path / "capture")
    assert (record["status"], record["error"]) == (400, "wrong_feature_count") == (refused.value.status_code,
                                                                                   refused.value.error)
    assert record["inputs"] == [] and record["predictions"] == []


def test_a_capture_failure_never_fails_a_request(src_modules, model, capture, tmp_path, monkeypatch):
    # GIVEN a sink that cannot be written (a file where the directory should be), in both write modes
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    expected = serve(src_modules, model, ",".join(map(repr, ROW)))
    for synchronous in (False, True):
        capture.reset()
        capture.configure(sink=str(blocked), synchronous=synchronous)
        # WHEN requests are served and the records written
        got = serve(src_modules, model, ",".join(map(repr, ROW)))
        capture.flush()
        # THEN the answer is the same, and the failure is counted (and logged) instead of raised
        assert got.tolist() == expected.tolist()
        assert capture._state.failures >= 1
    # AND a writer thread that cannot start (the process is out of threads) fails nothing
    capture.reset()
    capture._state.writer = None  # as in a process that has not started it yet
    capture.configure(sink=str(tmp_path / "capture"), synchronous=False)
    with monkeypatch.context() as patch:
        patch.setattr(capture.threading.Thread, "start", lambda self: (_ for _ in ()).throw(RuntimeError("no")))
        assert serve(src_modules, model, ",".join(map(repr, ROW))).tolist() == expected.tolist()
    assert capture._state.failures == 1
    assert capture.configure(rate=1.0).enabled and capture._state.hold is None  # no fast path without a writer
    capture._state.writer = None  # the next test's first request starts a writer that runs
    # AND a record that cannot even be built (a model without metadata) fails nothing either
    capture.reset()
    capture.configure(synchronous=True)
    broken = type("Broken", (), {"metadata": property(lambda self: 1 / 0)})()
    assert capture.predicted(lambda data, m: np.array([1.5]), np.zeros((1, 10)), broken).tolist() == [1.5]
    assert capture._state.failures == 1


def test_lost_records_are_counted_in_the_next_one_written(src_modules, model, capture, tmp_path, monkeypatch):
    monkeypatch.setattr(capture, "MAX_PENDING", 3)
    monkeypatch.setattr(capture, "_start_writer", lambda: None)  # nothing drains: the queue fills up
    for _ in range(5):
        serve(src_modules, model, ",".join(map(repr, ROW)))
    capture.flush()
    assert [r["dropped"] for r in records(tmp_path / "capture")] == [2, 0, 0]


def test_the_writer_thread_writes_without_being_asked(src_modules, model, capture, tmp_path):
    serve(src_modules, model, ",".join(map(repr, ROW)))
    deadline = time.monotonic() + 30
    while not records(tmp_path / "capture") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(records(tmp_path / "capture")) == 1


def test_missing_values_are_written_as_null(src_modules, capture, tmp_path):
    capture.configure(synchronous=True)
    schema = type("Model", (), {"metadata": {"feature_names": ["a", "b"], "model_sha256": "x"}})()
    capture.predicted(lambda data, m: np.array([0.5]), np.array([[np.nan, 1.0]]), schema)
    [record] = records(tmp_path / "capture")
    assert record["inputs"] == [[None, 1.0]] and record["features"] == ["a", "b"]


@pytest.mark.parametrize("env, target", [
    ({}, "endpoint"),
    ({"SAGEMAKER_BATCH": "true"}, "batch"),
    ({"AWS_LAMBDA_FUNCTION_NAME": "greenlight-models"}, "lambda"),
    ({"GREENLIGHT_CAPTURE_TARGET": "batch", "AWS_LAMBDA_FUNCTION_NAME": "f"}, "batch"),
    ({"GREENLIGHT_CAPTURE_TARGET": "elsewhere"}, "endpoint"),
])
def test_the_target_comes_from_the_runtime_unless_set(capture, monkeypatch, env, target):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert capture.settings().target == target
    assert capture.settings().synchronous is ("AWS_LAMBDA_FUNCTION_NAME" in env)  # Lambda writes at once


def test_the_lambda_handler_names_its_target(src_modules, model, capture, tmp_path):
    # GIVEN the handler module executed as Lambda imports it (it calls capture.serving_as("lambda"))
    importlib.reload(src_modules.lambda_function)
    event = {"requestContext": {"http": {"method": "POST"}}, "rawPath": "/", "headers": {"content-type": "text/csv"},
             "body": ",".join(map(repr, ROW))}
    # WHEN it answers a prediction
    assert src_modules.lambda_function.handle(event, model)["statusCode"] == 200
    capture.flush()
    # THEN the record names the Lambda, not the endpoint
    assert [r["target"] for r in records(tmp_path / "capture", "lambda")] == ["lambda"]
    assert records(tmp_path / "capture", "endpoint") == []


@pytest.mark.parametrize("name, value", [("GREENLIGHT_CAPTURE_SAMPLE_RATE", "1.5"),
                                         ("GREENLIGHT_CAPTURE_SAMPLE_RATE", "half"),
                                         ("GREENLIGHT_CAPTURE_MAX_ROWS", "0")])
def test_a_bad_setting_is_ignored_with_a_warning_naming_it(capture, monkeypatch, caplog, name, value):
    monkeypatch.setenv(name, value)
    current = capture.settings()
    assert (current.rate, current.max_rows) == (1.0, 100)
    assert any(name in r.getMessage() for r in caplog.records)


def test_stdout_is_the_sink_on_aws(src_modules, model, capture, capsys, monkeypatch):
    monkeypatch.setenv("GREENLIGHT_CAPTURE", "stdout")
    capture.reset()
    serve(src_modules, model, ",".join(map(repr, ROW)))
    capture.flush()
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["greenlight_capture"] == 1


def test_capture_turned_on_after_the_code_served_is_obeyed(src_modules, model, capture, tmp_path, monkeypatch):
    # GIVEN this copy of the code served while capture was off (an in-process smoke test)
    monkeypatch.delenv("GREENLIGHT_CAPTURE")
    serve(src_modules, model, ",".join(map(repr, ROW)))
    # WHEN a host turns capture on for the process (api.serve_endpoint) and RECHECK seconds have passed
    monkeypatch.setenv("GREENLIGHT_CAPTURE", str(tmp_path / "capture"))
    time.sleep(capture.RECHECK * 1.5)
    serve(src_modules, model, ",".join(map(repr, ROW)))
    capture.flush()
    # THEN the new request is captured
    assert len(records(tmp_path / "capture")) == 1


def test_a_record_too_big_for_a_log_event_keeps_fewer_rows(src_modules, capture, tmp_path, monkeypatch):
    # GIVEN a wide model (2,000 features) and the default bound of 100 rows: about 4 MB of JSON
    monkeypatch.setattr(capture, "MAX_LINE_BYTES", 200_000)
    capture.configure(synchronous=True)
    wide = type("Model", (), {"metadata": {"feature_names": [f"f{i}" for i in range(2000)], "model_sha256": "x"}})()
    rows = np.random.default_rng(5).normal(size=(300, 2000))
    capture.predicted(lambda data, m: np.arange(300.0), rows, wide)
    # THEN the line fits a CloudWatch Logs event, with rows still evenly spread and their own predictions
    [line] = (tmp_path / "capture" / "endpoint.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert len(line) <= 200_000 and record["rows"] == 300 and 0 < len(record["inputs"]) < 100
    # (the predictions are the row numbers, so each kept row can be checked against its own)
    assert len(record["predictions"]) == len(record["inputs"])
    assert all(row == rows[int(p)].tolist() for row, p in zip(record["inputs"], record["predictions"], strict=True))
    assert record["predictions"] == sorted(record["predictions"]) and record["predictions"][-1] >= 150  # spread out


@pytest.mark.parametrize("inputs, predictions", [
    ([ROW, [-0.0, 5e-324, 1e16, 1e-7, 0.1, 1.0, 123456789.125, -1.5e300, 2.0**53, 1 / 3]], [145.52, 0.0]),
    ([[np.float64(0.25), 3]], [7]),  # a float subclass, then ints: json's way
    ([[float("nan"), 1.5]], [float("nan")]),  # missing values: null
    ([], []),
])
def test_inputs_and_predictions_are_written_as_json_writes_them(capture, inputs, predictions):
    expected = json.dumps({"inputs": [[None if v != v else v for v in row] for row in inputs],
                           "predictions": [None if v != v else v for v in predictions]}, separators=(",", ":"))
    assert "{" + capture._dumps(inputs, predictions) + "}" == expected


@pytest.mark.parametrize("body, content_type", [
    (",".join(map(repr, ROW)), "text/csv"),
    (" 5,1e-3,-0.0,2 ,3,4,5,6,7,8\n", "text/csv"),  # ints and exponents: the row as decode reads it
    (json.dumps(ROW), "application/json"),
    (json.dumps({"instances": [[5, 1, 2.5, 3, 4, 5, 6, 7, 8, 9]]}), "application/json"),
])
def test_a_one_row_request_is_held_as_its_text_and_written_as_the_same_line(src_modules, model, capture, tmp_path,
                                                                            monkeypatch, body, content_type):
    # GIVEN the writer thread's path, with the writer not yet run
    monkeypatch.setattr(capture, "_start_writer", lambda: None)
    serve(src_modules, model, body, content_type)
    # THEN what waits for the writer is the request's text and its prediction as a Python float, not its objects
    [held] = capture._state.pending
    assert len(held) == 6 and isinstance(held[1], str) and type(held[2]) is float
    # AND its line is the line of the request's own rows and prediction array, byte for byte
    data = src_modules.inference.input_fn(body, content_type)
    out = src_modules.inference._predict(data, model)
    current = capture.settings()
    lines = []
    for item in (held, (held[0], data, out, model, None)):
        monkeypatch.setattr(capture._state, "counter", iter([7]))
        lines.append(capture._line(item, current))
    assert lines[0] == lines[1] and json.loads(lines[0])["inputs"] == [data.row]


def test_requests_of_other_shapes_are_held_as_they_are(src_modules, model, capture, monkeypatch):
    monkeypatch.setattr(capture, "_start_writer", lambda: None)
    serve(src_modules, model, "\n".join([",".join(map(repr, ROW))] * 2))  # two rows
    capture.predicted(lambda data, m: np.array([1.5]), np.array([ROW]), model)  # an array, no text
    assert [len(item) for item in capture._state.pending] == [5, 5]
    with pytest.raises(ValueError, match="one row"):  # only a one-row text is made again from its text
        src_modules.payload.Batch.from_text("1,2\n3,4")


@pytest.fixture
def armed(capture, monkeypatch):
    """The writer thread's path with a writer thread that runs but writes nothing until the test ends."""
    stop = threading.Event()
    monkeypatch.setattr(capture, "_write_forever", stop.wait)
    capture._state.writer = None  # a writer started by an earlier test ends at its next tick, writing nothing
    calls = []
    observe = capture._observe
    monkeypatch.setattr(capture, "_observe", lambda *args: (calls.append(args), observe(*args)))
    yield calls
    stop.set()
    capture._state.writer = None  # the next request starts a real writer


def test_once_the_writer_runs_a_one_row_request_is_held_by_the_fast_path_as_observe_holds_it(
        src_modules, model, capture, armed, tmp_path):
    body = ",".join(map(repr, ROW))
    serve(src_modules, model, body)  # the first request starts the writer, through _observe
    assert capture._state.hold is not None and len(armed) == 1
    serve(src_modules, model, body)  # the next one through the fast path
    assert len(armed) == 1
    slow, fast = capture._state.pending
    assert [type(v) for v in slow] == [type(v) for v in fast] and slow[1:] == fast[1:]
    # AND both are written as the same record
    capture.flush()
    first, second = records(tmp_path / "capture")
    assert {k: v for k, v in first.items() if k not in ("time", "inference_id")} == \
        {k: v for k, v in second.items() if k not in ("time", "inference_id")}
    # AND a request of another shape still goes through _observe, held as it is
    serve(src_modules, model, "\n".join([body] * 2))
    assert len(armed) == 2 and len(capture._state.pending) == 1 and len(capture._state.pending[0]) == 5


@pytest.mark.parametrize("change", [dict(sink=None), dict(rate=0.5), dict(synchronous=True),
                                    dict(after_answer=True)])
def test_any_other_setting_disarms_the_fast_path_at_once(src_modules, model, capture, armed, change):
    serve(src_modules, model, ",".join(map(repr, ROW)))
    assert capture._state.hold is not None
    capture.configure(**change)
    assert capture._state.hold is None
    serve(src_modules, model, ",".join(map(repr, ROW)))
    assert len(armed) == 2  # the request went through _observe, which obeys the new settings


def test_a_full_queue_sends_the_request_to_observe_which_counts_it_dropped(src_modules, model, capture, armed,
                                                                           monkeypatch, tmp_path):
    monkeypatch.setattr(capture, "MAX_PENDING", 2)
    for _ in range(4):
        serve(src_modules, model, ",".join(map(repr, ROW)))
    assert len(capture._state.pending) == 2 and capture._state.dropped == 2
    capture.flush()
    assert [r["dropped"] for r in records(tmp_path / "capture")] == [2, 0]


def test_a_forked_child_starts_disarmed(src_modules, model, capture, armed):
    serve(src_modules, model, ",".join(map(repr, ROW)))
    parents = capture._state.pending
    capture._after_fork()  # what os.register_at_fork runs in the child
    assert capture._state.hold is None and capture._state.writer is None
    assert capture._state.pending is not parents
