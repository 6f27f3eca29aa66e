"""src/capture.py in Lambda: the internal extension that writes each invocation's records after its answer.

A fake Lambda Extensions API (stdlib HTTP server) plays Lambda: it answers register, hands out the events the
test queues, and notes how many records were written when the extension asked for its next event, which is
the moment Lambda may freeze or end the environment.
"""

# ruff: noqa: F811 - the fixtures imported from test_capture are redefined as parameters
from __future__ import annotations

import http.server
import json
import queue
import threading
import time

import pytest

from tests.unit.test_capture import ROW, capture, model, records, serve, src_modules  # noqa: F401 - fixtures

BODY = ",".join(map(repr, ROW))
EVENT = {"requestContext": {"http": {"method": "POST"}}, "rawPath": "/", "headers": {"content-type": "text/csv"},
         "body": BODY}


class FakeExtensionsApi:
    """register -> an identifier; event/next -> the next queued event (None: a 500, as a broken API would)."""

    def __init__(self, written) -> None:
        self.events: queue.Queue = queue.Queue()
        self.nexts: queue.Queue = queue.Queue()  # records written at each next call
        self.sent: queue.Queue = queue.Queue()  # each event once it is on the extension's socket
        self.registered: list[tuple[dict, dict]] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.registered.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Lambda-Extension-Identifier", "ext-1")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_GET(self) -> None:  # noqa: N802
                assert self.path == "/2020-01-01/extension/event/next"
                assert self.headers["Lambda-Extension-Identifier"] == "ext-1"
                api.nexts.put(written())
                event = api.events.get(timeout=30)
                payload = b"" if event is None else json.dumps(event).encode()
                self.send_response(500 if event is None else 200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                api.sent.put(event)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self) -> None:
        self.events.put({"eventType": "INVOKE", "deadlineMs": 4102444800000, "requestId": "r"})


@pytest.fixture
def lambda_env(capture, monkeypatch, tmp_path):  # noqa: F811 - the fixture imported above
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "greenlight-models")
    api = FakeExtensionsApi(lambda: len(records(tmp_path / "capture", "lambda")))
    api.thread.start()
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", api.address)
    yield api
    thread = capture._state.extension
    api.events.put(None)  # the extension's thread ends (and capture falls back) if it is still asking
    if thread is not None:
        thread.join(timeout=10)
    api.server.shutdown()
    api.server.server_close()


def test_records_are_written_after_the_answer_and_before_the_next_event(src_modules, model, capture, lambda_env,
                                                                        tmp_path, monkeypatch):
    # GIVEN the init phase registered the capture extension, which then asked for its first event
    assert capture.start_lambda_extension() is True
    [(headers, body)] = lambda_env.registered
    assert headers["Lambda-Extension-Name"] == "greenlight-capture" and body == {"events": ["INVOKE"]}
    assert lambda_env.nexts.get(timeout=10) == 0
    assert capture.settings().after_answer is True
    # WHEN an invocation predicts: the record waits while the handler has not answered
    lambda_env.invoke()
    serve(src_modules, model, BODY)
    assert records(tmp_path / "capture", "lambda") == []
    capture.answered()
    # THEN it is written before the extension asks for the next event (when Lambda may freeze the environment)
    assert lambda_env.nexts.get(timeout=10) == 1
    # AND the handler itself says when it has answered
    lambda_function = src_modules.lambda_function
    monkeypatch.setattr(lambda_function, "load_model", lambda: model)
    lambda_env.invoke()
    assert lambda_function.lambda_handler(EVENT, None)["statusCode"] == 200
    assert lambda_env.nexts.get(timeout=10) == 2
    assert [r["target"] for r in records(tmp_path / "capture", "lambda")] == ["lambda", "lambda"]


def test_a_record_written_after_the_answer_says_what_one_written_at_once_says(src_modules, model, capture,
                                                                              lambda_env, tmp_path):
    serve(src_modules, model, BODY)  # before the extension: written at once
    assert capture.start_lambda_extension() is True
    lambda_env.nexts.get(timeout=10)
    lambda_env.invoke()
    serve(src_modules, model, BODY)
    capture.answered()
    assert lambda_env.nexts.get(timeout=10) == 2
    at_once, after = records(tmp_path / "capture", "lambda")
    assert at_once.pop("inference_id") != after.pop("inference_id")
    at_once.pop("time"), after.pop("time")
    assert list(at_once) == list(after) and at_once == after and after["inputs"] == [ROW]


def test_when_the_extension_fails_each_record_is_written_at_once_again(src_modules, model, capture, lambda_env,
                                                                      tmp_path):
    assert capture.start_lambda_extension() is True
    lambda_env.nexts.get(timeout=10)
    # GIVEN a record pending for an invocation whose next event the API cannot give
    lambda_env.invoke()
    serve(src_modules, model, BODY)
    capture.answered()
    lambda_env.nexts.get(timeout=10)
    thread = capture._state.extension
    lambda_env.events.put(None)
    thread.join(timeout=10)
    # THEN the extension is off, and each record is written before its answer again
    assert capture._state.extension is None and capture.settings().after_answer is False
    assert len(records(tmp_path / "capture", "lambda")) == 1
    serve(src_modules, model, BODY)
    assert len(records(tmp_path / "capture", "lambda")) == 2


def test_without_the_extensions_api_each_record_is_written_before_its_answer(src_modules, model, capture,
                                                                            monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "greenlight-models")
    assert capture.start_lambda_extension() is False  # outside Lambda: no AWS_LAMBDA_RUNTIME_API
    with socket_nobody_listens() as address:
        monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", address)
        assert capture.start_lambda_extension() is False  # nothing answers register: a warning, no extension
    serve(src_modules, model, BODY)
    assert len(records(tmp_path / "capture", "lambda")) == 1  # no flush needed: written at once


class socket_nobody_listens:  # noqa: N801 - used as a context manager
    """A local address where no server listens (the port is bound, never listened on)."""

    def __enter__(self) -> str:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self.sock.close()


def test_the_extension_reads_its_invoke_event_only_after_the_answer_at_the_lowest_priority(src_modules, model, capture,
                                                                                           lambda_env, monkeypatch):
    # GIVEN the extension waiting in next, and a record of what its thread reads and when
    reads, answered = [], []
    next_event = capture._next_event
    monkeypatch.setattr(capture, "_next_event", lambda connection: reads.append(len(answered)) or next_event(connection))
    assert capture.start_lambda_extension() is True
    lambda_env.nexts.get(timeout=10)
    # WHEN an invocation starts (its INVOKE event sent) and the handler serves, then answers
    lambda_env.invoke()
    lambda_env.sent.get(timeout=10)
    serve(src_modules, model, BODY)
    time.sleep(0.2)  # a bound for a thread that would read at once (it reads within microseconds)
    assert reads == []  # the thread sleeps through the handler although its event has come
    answered.append(True)
    capture.answered()
    # THEN it reads the event only once the answer is out, and asks for the next
    assert lambda_env.nexts.get(timeout=10) == 1 and reads == [1]
    import os

    assert os.getpriority(os.PRIO_PROCESS, capture._state.extension.native_id) == capture.EXTENSION_NICE
