"""The capture benchmark's endpoint level: one CSV row over HTTP to `greenlight endpoint serve`, end to end.

Three servers per round, started anew (a process's own luck is part of the noise): capture off
(GREENLIGHT_CAPTURE=off, what an operator who turned it off runs), off again (the A/A pair), and on (the
writer thread appending to GREENLIGHT_HOME's capture file, as every local serving command sets it). One
client on a keep-alive connection times each request; each server in every position over the rounds.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks.serving_http import PY, Server, _free_port

__all__ = ["ENDPOINT_MODES", "measure_endpoint"]

ROUNDS = 20  # more rounds than in process: a new process per mode and round brings its own luck (0061)
CALLS = 400  # per server and round
WARM = 100
OFF, AA, ON = "off", "off again (A/A)", "on"
ENDPOINT_MODES = (OFF, AA, ON)


def measure_endpoint(model_dir: Path, rows: list[str], work: Path) -> tuple[dict[str, list[list[int]]], dict]:
    """Per mode, the timed requests of each round (ns); and the records the capture-on servers wrote."""
    rounds: dict[str, list[list[int]]] = {m: [] for m in ENDPOINT_MODES}
    clock = time.perf_counter_ns
    captured = work / "endpoint-capture"
    for r in range(ROUNDS):
        servers = {}
        try:
            for mode in ENDPOINT_MODES:
                port = _free_port()
                env = dict(os.environ, GREENLIGHT_HOME=str(work / f"home-{r}-{mode[:3]}"),
                           GREENLIGHT_CAPTURE="off" if mode != ON else str(captured))
                servers[mode] = Server(mode, [PY, "-m", "greenlight.cli", "endpoint", "serve", "--model",
                                              str(model_dir), "--port", str(port)], port, env,
                                       lambda row: row.encode(), "text/csv")
            connections = {}
            for mode, server in servers.items():
                server.wait_first_prediction(rows[0])
                connections[mode] = conn = server.connect()
                for i in range(WARM):
                    server.post(conn, rows[i % len(rows)])
            for mode in ENDPOINT_MODES[r % len(ENDPOINT_MODES):] + ENDPOINT_MODES[:r % len(ENDPOINT_MODES)]:
                server, conn, this_round = servers[mode], connections[mode], []
                for i in range(CALLS):
                    t0 = clock()
                    status, _ = server.post(conn, rows[i % len(rows)])
                    this_round.append(clock() - t0)
                    if status != 200:
                        raise RuntimeError(f"the endpoint ({mode}) answered {status}")
                rounds[mode].append(this_round)
            for conn in connections.values():
                conn.close()
        finally:
            for server in servers.values():
                server.stop()
    written = sum(1 for f in captured.glob("*.jsonl") for _ in f.open(encoding="utf-8")) if captured.exists() else 0
    return rounds, {"records_written": {ON: written}, "requests_to_capture": ROUNDS * (CALLS + WARM + 1)}
