"""Worker processes for a local batch job, and the parent's side of their pipes.

Processes, not threads: parsing CSV and the model's Python code hold the GIL. Each worker is a
fresh `python -m deploy.batch.worker` that loads the model once (its own `code/inference.py`, as
the endpoint's loader imports it). Per worker, one parent thread sends units and another reads the
answers: a worker holds up to UNITS_PER_WORKER units sent and unanswered, so its next unit is on its
way through the pipe while it computes one and it never waits for the parent between units (record
0055). `submit` returns a Future, so the caller can keep several units in flight and still write
results in order. A worker that dies or whose model code fails breaks the pool: every unit not yet
answered fails with that reason, so nothing waits forever.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

from deploy.batch.transform import UnitResult
from deploy.batch.worker import FATAL, READY, RESULT, RESULT_HEADER, WORK, read_message, write_message
from greenlight.errors import GreenlightError

__all__ = ["WorkerFailed", "WorkerPool", "available_cpus"]

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STOP_SECONDS = 5.0
UNITS_PER_WORKER = 2  # sent and unanswered: the one it computes, and the next


class WorkerFailed(GreenlightError):
    """A worker could not load the model, its model code failed, or the process died."""


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


class _Worker:
    def __init__(self, index: int, settings: dict, env: dict):
        self.index = index
        self.proc = subprocess.Popen([sys.executable, "-m", "deploy.batch.worker", json.dumps(settings)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        if self.proc.stdin is None or self.proc.stdout is None:  # never with PIPE; typeshed says Optional
            raise OSError("the batch worker was started without pipes")
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.ready = threading.Event()
        self.slots = threading.Semaphore(UNITS_PER_WORKER)
        self.sent: queue.SimpleQueue = queue.SimpleQueue()  # Futures of the units sent, in order; None: no more
        self.thread: threading.Thread | None = None
        self.receiver: threading.Thread | None = None


class WorkerPool:
    """`workers` processes serving one model; use as a context manager, or call `close()`."""

    def __init__(self, workers: int, settings: dict, env_updates: dict[str, str] | None = None):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        env.update(env_updates or {})
        self._queue: queue.Queue = queue.Queue()
        self._broken: WorkerFailed | None = None
        self._lock = threading.Lock()
        self._workers = [_Worker(i, settings, env) for i in range(workers)]
        for worker in self._workers:
            worker.thread = threading.Thread(target=self._serve, args=(worker,), daemon=True,
                                             name=f"batch-worker-{worker.index}")
            worker.thread.start()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Block until every worker has loaded the model. Raises: WorkerFailed (the first reason)."""
        for worker in self._workers:
            while not worker.ready.wait(0.2):
                if self._broken is not None:
                    raise self._broken
                timeout -= 0.2
                if timeout <= 0:
                    raise WorkerFailed("the batch workers did not load the model in time")
        if self._broken is not None:
            raise self._broken

    def submit(self, data: bytes | bytearray) -> Future:
        """Queue one unit; its Future gives a UnitResult or raises WorkerFailed."""
        future: Future = Future()
        self._queue.put((data, future))
        return future

    def close(self, abort: bool = False) -> None:
        """Stop the workers: end of input (abort=False) or terminate at once; waits for them either way."""
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            if abort and worker.proc.poll() is None:
                worker.proc.terminate()
            try:
                worker.stdin.close()
            except OSError:
                pass
        for worker in self._workers:
            try:
                worker.proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            for thread in (worker.thread, worker.receiver):
                if thread is not None:
                    thread.join(STOP_SECONDS)
            worker.stdout.close()

    def _break(self, error: WorkerFailed) -> WorkerFailed:
        with self._lock:
            if self._broken is None:
                self._broken = error
            return self._broken

    def _serve(self, worker: _Worker) -> None:
        """The parent's sending side of one worker: READY first, then units until the sentinel."""
        try:
            message = read_message(worker.stdout)
        except (OSError, EOFError, ValueError):
            message = None
        if message is None or message[0] != READY:
            self._break(self._failure(worker, message))
        worker.receiver = threading.Thread(target=self._receive, args=(worker,), daemon=True,
                                           name=f"batch-worker-{worker.index}-answers")
        worker.receiver.start()
        worker.ready.set()
        while True:
            worker.slots.acquire()  # released as each answer comes back
            item = self._queue.get()
            if item is None:
                worker.sent.put(None)
                return
            data, future = item
            if self._broken is not None:
                future.set_exception(self._broken)
                worker.slots.release()
                continue
            worker.sent.put(future)  # before the write: its answer may come back before the write returns
            try:
                write_message(worker.stdin, WORK, data)
            except (OSError, ValueError):
                pass  # the worker is gone: the receiver reads the end of its stream and fails the unit

    def _receive(self, worker: _Worker) -> None:
        """The parent's answering side of one worker: one answer per unit sent, in the order sent."""
        pid = worker.proc.pid
        failed: WorkerFailed | None = None
        while (future := worker.sent.get()) is not None:
            if failed is None:
                try:
                    message = read_message(worker.stdout)
                except (OSError, EOFError, ValueError):
                    message = None
                if message is not None and message[0] == RESULT:
                    records, bad_length = RESULT_HEADER.unpack_from(message[1])
                    start = RESULT_HEADER.size
                    bad = [tuple(b) for b in json.loads(message[1][start:start + bad_length])]
                    future.set_result(UnitResult(records, message[1][start + bad_length:], bad))
                    logger.debug("worker %d (pid %d) answered %d records", worker.index, pid, records)
                    worker.slots.release()
                    continue
                failed = self._break(self._failure(worker, message))
            future.set_exception(failed)  # every unit sent to a broken worker fails, none waits
            worker.slots.release()

    @staticmethod
    def _failure(worker: _Worker, message) -> WorkerFailed:
        if message is not None and message[0] == FATAL:
            return WorkerFailed(json.loads(message[1])["error"])
        code: int | str | None = worker.proc.poll()
        if code is None:
            try:
                code = worker.proc.wait(1.0)
            except subprocess.TimeoutExpired:
                code = "still running"
        return WorkerFailed(f"batch worker (pid {worker.proc.pid}) stopped answering (exit code {code})")
