"""A local Lambda execution environment for benchmarks: the Runtime API and the Extensions API over HTTP, and a
runtime client in its own process running a model version's real `lambda_function.lambda_handler`.

    with LambdaEnvironment(model_dir, log_path, capture=True) as env:
        env.wait_ready()                                 # untimed: the last invocation is over
        answer = env.invoke(event)                       # a synchronous Invoke over HTTP: the handler's dict

What Lambda does, and this does (AWS Lambda developer guide, "Lambda execution environment" and
"Extensions API"): the init imports the handler module (with AWS_LAMBDA_FUNCTION_NAME and AWS_LAMBDA_RUNTIME_API
set, so `lambda_function` loads the model and `capture.start_lambda_extension()` registers its internal
extension) and ends when the runtime first asks for an event; an invocation goes out only once the runtime and
every registered extension wait in their `next` call; the runtime's `next` gets the event, every extension's an
INVOKE event; the caller gets the answer as soon as the runtime posts its response; the invocation is over when
the runtime and every extension ask for `next` again. The runtime client is a loop of `next` / handler /
`response` over one keep-alive connection, as the Python runtime interface client does.

The APIs run in a process of their own, on one asyncio loop (as Lambda's own, in Go, they take no lock the
function's threads wait for), so the timing client shares no interpreter with them. Not emulated: freezing,
SHUTDOWN, timeouts, error posts. `refuse_extensions` answers register with 403, as a runtime without the
Extensions API would: capture then prints each record before its answer.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["LambdaEnvironment"]

RUNTIME = "/2018-06-01/runtime/invocation"
EXTENSION = "/2020-01-01/extension"
INVOKE = "/2015-03-31/functions/function/invocations"
READY = "/ready"  # the benchmark's own: answers once the last invocation is over
DEADLINE_SECONDS = 30.0

BOOTSTRAP = """
import http.client, json, os, sys
sys.path.insert(0, sys.argv[1])
import lambda_function  # the init phase: the model loaded, the capture extension registered
connection = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    connection.request("GET", "/2018-06-01/runtime/invocation/next")
    answer = connection.getresponse()
    event = json.loads(answer.read())
    request_id = answer.getheader("Lambda-Runtime-Aws-Request-Id")
    result = json.dumps(lambda_function.lambda_handler(event, None)).encode()
    connection.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", body=result)
    connection.getresponse().read()
"""


class LambdaEnvironment:
    """One execution environment: the APIs in a child process, the runtime in its child; the caller's connection."""

    def __init__(self, model_dir: Path, log_path: Path, *, capture: bool, refuse_extensions: bool = False):
        self.model_dir, self.log_path = Path(model_dir), Path(log_path)
        self.capture, self.refuse_extensions = capture, refuse_extensions
        self._process: subprocess.Popen | None = None
        self._client: http.client.HTTPConnection | None = None
        self.api = ""
        self.runtime_span_ns = 0

    def __enter__(self) -> LambdaEnvironment:
        args = [sys.executable, "-m", "benchmarks.lambda_runtime", str(self.model_dir), str(self.log_path),
                "capture" if self.capture else "off", "refuse" if self.refuse_extensions else "accept"]
        root = Path(__file__).resolve().parents[1]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, stderr=log, text=True)
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line.startswith("ready "):
            self.__exit__()
            raise RuntimeError(f"the Lambda environment did not start (see {self.log_path}): {line!r}")
        self.api = line.split()[1]
        self._client = http.client.HTTPConnection(self.api)
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(30)

    def _call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes, dict[str, str]]:
        assert self._client is not None, "use the environment in a with block"
        self._client.request(method, path, body=body or None)
        answer = self._client.getresponse()
        return answer.status, answer.read(), dict(answer.getheaders())

    def wait_ready(self) -> None:
        """Until the last invocation is over (an environment busy in its post-invoke phase takes no invocation)."""
        self._call("GET", READY)

    def extensions(self) -> int:
        """How many extensions registered."""
        return int(self._call("GET", READY)[2].get("X-Extensions", "0"))

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """A synchronous Invoke through the Invoke API over HTTP (one keep-alive connection); `runtime_span_ns`
        then holds the span from the event handed to the runtime to its response received (the APIs' clock)."""
        status, body, headers = self._call("POST", INVOKE, json.dumps(event).encode())
        if status != 200:
            raise RuntimeError(f"invoke answered {status}: {body[:200]!r}")
        self.runtime_span_ns = int(headers.get("X-Runtime-Span-Ns", "0"))
        return json.loads(body)


class _Apis:
    """The Runtime, Extensions and Invoke APIs of one environment, on one asyncio loop."""

    def __init__(self, refuse_extensions: bool):
        self.refuse_extensions = refuse_extensions
        self.changed = asyncio.Condition()
        self.runtime_waiting = False
        self.extensions: dict[str, bool] = {}  # identifier -> waiting in next
        self.runtime_event: tuple[str, bytes] | None = None
        self.extension_events: dict[str, bytes] = {}
        self.answers: dict[str, tuple[bytes, int]] = {}
        self.ids = itertools.count(1)

    def idle(self) -> bool:
        return self.runtime_waiting and all(self.extensions.values())

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                status, payload, extra = await self.route(method, path, headers, body)
                out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(payload)}",
                       *(f"{k}: {v}" for k, v in extra.items())]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    async def route(self, method: str, path: str, headers: dict[str, str],
                    body: bytes) -> tuple[int, bytes, dict[str, str]]:
        if method == "GET" and path == f"{RUNTIME}/next":
            async with self.changed:
                self.runtime_waiting = True
                self.changed.notify_all()
                await self.changed.wait_for(lambda: self.runtime_event is not None)
                (request_id, payload), self.runtime_event = self.runtime_event, None  # type: ignore[misc]
            return 200, payload, {"Lambda-Runtime-Aws-Request-Id": request_id,
                                  "Lambda-Runtime-Deadline-Ms": str(int((time.time() + DEADLINE_SECONDS) * 1000))}
        if method == "POST" and path.startswith(f"{RUNTIME}/") and path.endswith(("/response", "/error")):
            async with self.changed:
                self.answers[path[len(RUNTIME) + 1:].rsplit("/", 1)[0]] = (body, time.perf_counter_ns())
                self.changed.notify_all()
            return 202, b'{"status":"OK"}', {}
        if method == "POST" and path == f"{EXTENSION}/register":
            if self.refuse_extensions:
                return 403, b'{"errorType":"Extension.Forbidden"}', {}
            identifier = f"extension-{len(self.extensions) + 1}"
            self.extensions[identifier] = False
            return 200, b"{}", {"Lambda-Extension-Identifier": identifier}
        if method == "GET" and path == f"{EXTENSION}/event/next":
            identifier = headers.get("lambda-extension-identifier", "")
            async with self.changed:
                self.extensions[identifier] = True
                self.changed.notify_all()
                await self.changed.wait_for(lambda: identifier in self.extension_events)
                return 200, self.extension_events.pop(identifier), {}
        if method == "POST" and path == INVOKE:
            answer, span = await self.invoke(body)
            return 200, answer, {"X-Amz-Executed-Version": "$LATEST", "X-Runtime-Span-Ns": str(span)}
        if method == "GET" and path == READY:
            async with self.changed:
                await self.changed.wait_for(self.idle)
            return 200, b"{}", {"X-Extensions": str(len(self.extensions))}
        return 404, b"{}", {}

    async def invoke(self, payload: bytes) -> tuple[bytes, int]:
        """The runtime's response, and the ns from the event handed out to the response received."""
        request_id = f"bench-{next(self.ids)}"
        event = json.dumps({"eventType": "INVOKE", "deadlineMs": int((time.time() + DEADLINE_SECONDS) * 1000),
                            "requestId": request_id, "tracing": {},
                            "invokedFunctionArn": "arn:aws:lambda:local:000000000000:function:greenlight-bench"})
        async with self.changed:
            await self.changed.wait_for(self.idle)  # goes out once the runtime and every extension wait in next
            self.runtime_event, self.runtime_waiting = (request_id, payload), False
            for identifier in self.extensions:
                self.extensions[identifier] = False
                self.extension_events[identifier] = event.encode()
            self.changed.notify_all()
            sent = time.perf_counter_ns()
            await self.changed.wait_for(lambda: request_id in self.answers)
            answer, received = self.answers.pop(request_id)
            return answer, received - sent


async def _main(model_dir: Path, log_path: Path, capture: bool, refuse: bool) -> None:
    apis = _Apis(refuse)
    server = await asyncio.start_server(apis.serve, "127.0.0.1", 0)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.close)  # ends serve_forever: runtime killed
    address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENLIGHT_CAPTURE", "AWS_"))}
    env.update({"AWS_LAMBDA_FUNCTION_NAME": "greenlight-bench", "AWS_LAMBDA_RUNTIME_API": address,
                "GREENLIGHT_MODEL_DIR": str(model_dir)})
    if capture:
        env["GREENLIGHT_CAPTURE"] = "stdout"
    with open(log_path, "ab") as log:  # Lambda's stdout: a pipe to the log agent; here a file
        runtime = subprocess.Popen([sys.executable, "-c", BOOTSTRAP, str(model_dir / "code")], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        async with apis.changed:  # the init phase ends when the runtime first asks for an event
            await asyncio.wait_for(apis.changed.wait_for(lambda: apis.runtime_waiting), 120)
        print(f"ready {address}", flush=True)
        await server.serve_forever()
    except asyncio.CancelledError:
        pass
    finally:
        runtime.kill()
        runtime.wait(30)


if __name__ == "__main__":
    try:
        asyncio.run(_main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "capture", sys.argv[4] == "refuse"))
    except KeyboardInterrupt:
        pass
