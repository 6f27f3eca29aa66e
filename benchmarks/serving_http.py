"""HTTP half of `python -m benchmarks serving`: our endpoint against `mlflow models serve`, same model and rows.

Both servers run as subprocesses on 127.0.0.1 (ports picked free); the clients are threads of this
process on keep-alive connections. One client measures latency; 8 concurrent clients measure
throughput for a fixed duration. Every loop is bounded by a count or a duration.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

PY = sys.executable
HTTP_ROUNDS = 3
HTTP_CALLS = 300  # per round and server, one client
CONCURRENT_CLIENTS = 8
CONCURRENT_SECONDS = 6.0
START_TIMEOUT = 180.0


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    arr = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (MLflow serves from a uvicorn child)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


class Server:
    """A server process on 127.0.0.1, and how to send it one row."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict, make_body, content_type: str):
        self.name, self.port, self.make_body, self.content_type = name, port, make_body, content_type
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self._stderr: list[str] = []
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True).start()

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def post(self, conn: http.client.HTTPConnection, row: str) -> tuple[int, bytes]:
        conn.request("POST", "/invocations", body=self.make_body(row), headers={"Content-Type": self.content_type})
        response = conn.getresponse()
        return response.status, response.read()

    def wait_first_prediction(self, row: str) -> float:
        """Seconds from process start to the first 200 from /invocations (polling every 10 ms)."""
        deadline = self.started + START_TIMEOUT
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {''.join(self._stderr)[-2000:]}")
            try:
                conn = self.connect()
                status, body = self.post(conn, row)
                conn.close()
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not answer within {START_TIMEOUT:.0f} s: {''.join(self._stderr)[-2000:]}")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def _post(server: Server, conn, row: str):
    """One request; a broken connection counts as status -1 and is replaced. Returns (status, connection)."""
    try:
        return server.post(conn, row)[0], conn
    except (OSError, http.client.HTTPException):
        conn.close()
        return -1, server.connect()


def _one_client(server: Server, rows: list[str], calls: int) -> tuple[list[int], int]:
    conn, samples, errors = server.connect(), [], 0
    for i in range(calls):
        t0 = time.perf_counter_ns()
        status, conn = _post(server, conn, rows[i % len(rows)])
        samples.append(time.perf_counter_ns() - t0)
        errors += status != 200
    conn.close()
    return samples, errors


def _concurrent(server: Server, rows: list[str]) -> dict:
    stop, ok, errors, barrier = threading.Event(), [0] * CONCURRENT_CLIENTS, [0] * CONCURRENT_CLIENTS, \
        threading.Barrier(CONCURRENT_CLIENTS + 1)

    def client(index: int) -> None:
        conn = server.connect()
        barrier.wait()
        i = index
        while not stop.is_set():
            status, conn = _post(server, conn, rows[i % len(rows)])
            if status == 200:
                ok[index] += 1
            else:
                errors[index] += 1
            i += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CONCURRENT_CLIENTS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(CONCURRENT_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - t0
    return {"rps": sum(ok) / elapsed, "ok": sum(ok), "errors": sum(errors)}


def http_servers(model_dir: Path, rows: list[str], features: list[str], work: Path) -> dict:
    env = dict(os.environ, GREENLIGHT_HOME=str(work / "home"), MLFLOW_TRACKING_URI=f"file://{work / 'mlruns'}",
               PATH=f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    mlflow_model = work / "mlflow-model"
    subprocess.run([PY, "-c", "import sys, joblib, mlflow.sklearn; mlflow.sklearn.save_model("
                    "joblib.load(sys.argv[1]), sys.argv[2], serialization_format='cloudpickle')",
                    str(model_dir / "model.joblib"), str(mlflow_model)], env=env, check=True, capture_output=True)
    header = ",".join(features)
    ours_port, mlflow_port = _free_port(), _free_port()
    servers = [
        Server("greenlight", [PY, "-m", "greenlight.cli", "endpoint", "serve", "--model", str(model_dir),
                              "--port", str(ours_port)], ours_port, env, lambda r: r.encode(), "text/csv"),
        Server("mlflow", [PY, "-m", "mlflow", "models", "serve", "-m", str(mlflow_model), "--env-manager", "local",
                          "-h", "127.0.0.1", "-p", str(mlflow_port)], mlflow_port, env,
               lambda r: f"{header}\n{r}\n".encode(), "text/csv"),
    ]
    out: dict = {"http_clients": CONCURRENT_CLIENTS, "http_concurrent_seconds": CONCURRENT_SECONDS}
    try:
        ours, theirs = servers
        out["endpoint_start_to_first_prediction_s"] = ours.wait_first_prediction(rows[0])
        out["mlflow_start_to_first_prediction_s"] = theirs.wait_first_prediction(rows[0])
        # Same answers? (both from the same forest)
        diffs, conns = [], [ours.connect(), theirs.connect()]
        for row in rows:
            a, b = (json.loads(s.post(c, row)[1]) for s, c in zip(servers, conns, strict=True))
            diffs.append(abs(a["predictions"][0] - b["predictions"][0]))
        for conn in conns:
            conn.close()
        out["http_max_abs_diff"] = max(diffs)
        for server in servers:  # warm up
            _one_client(server, rows, 50)
        samples = {s.name: [] for s in servers}
        errors = {s.name: 0 for s in servers}
        for _ in range(HTTP_ROUNDS):
            for server in servers:
                got, bad = _one_client(server, rows, HTTP_CALLS)
                samples[server.name].extend(got)
                errors[server.name] += bad
        for server in servers:
            p50, p99 = percentiles(samples[server.name])
            prefix = "http" if server.name == "greenlight" else "mlflow_http"
            out[f"{prefix}_p50_ms"], out[f"{prefix}_p99_ms"] = p50 / 1000, p99 / 1000
            out[f"{prefix}_one_client_errors"] = errors[server.name]
        for server in servers:
            result = _concurrent(server, rows)
            prefix = "http" if server.name == "greenlight" else "mlflow_http"
            out[f"{prefix}_8_clients_rps"] = result["rps"]
            out[f"{prefix}_8_clients_requests"] = result["ok"]
            out[f"{prefix}_8_clients_errors"] = result["errors"]
            out[f"{prefix}_server_rss_mb"] = _tree_rss_mb(server.proc.pid)
    finally:
        for server in servers:
            server.stop()
    out["http_p50_fraction_of_mlflow"] = out["http_p50_ms"] / out["mlflow_http_p50_ms"]
    out["http_8_clients_ratio"] = out["http_8_clients_rps"] / out["mlflow_http_8_clients_rps"]
    return out
