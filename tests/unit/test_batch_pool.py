"""deploy/batch/pool.py: worker processes on pipes, each sent its next unit while it computes one.

GIVEN real workers (`python -m deploy.batch.worker`) serving a model trained by src/train.py, THEN answers
come back per unit in the order the units were given, a worker holds UNITS_PER_WORKER units sent and
unanswered (so it never waits for the parent between units), and a worker that dies fails every unit
not yet answered instead of leaving one waiting.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from deploy.batch.pool import WorkerFailed, WorkerPool
from tests.support.batch_models import sklearn_predict, trained_model

ROWS = np.random.default_rng(3).uniform(-0.1, 0.1, size=(40, 10))
UNITS = [b"".join(",".join(map(repr, row.tolist())).encode() + b"\n" for row in ROWS[i:i + 8]) for i in range(0, 40, 8)]


def _pool(workers: int) -> WorkerPool:
    settings = {"model_dir": str(trained_model(12, 0)), "label": "test/1", "single_record": False,
                "join_input": False, "budget": 0}
    pool = WorkerPool(workers, settings, {"GREENLIGHT_PREDICT_THREADS": "1"})
    pool.wait_ready()
    return pool


def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_stopped_worker_holds_two_units_sent_and_the_rest_wait_in_the_queue():
    pool = _pool(1)
    worker = pool._workers[0]
    try:
        # GIVEN the only worker stopped (SIGSTOP), so it reads nothing
        os.kill(worker.proc.pid, signal.SIGSTOP)
        # WHEN five units are submitted
        futures = [pool.submit(unit) for unit in UNITS]
        # THEN two are sent to it (the one it would compute and the next), three wait for a free slot
        _until(lambda: pool._queue.qsize() == len(UNITS) - 2)
        time.sleep(0.2)  # and no more are taken
        assert pool._queue.qsize() == len(UNITS) - 2
        assert not any(f.done() for f in futures)
        # AND once it runs again every unit is answered, with scikit-learn's predictions in order
        os.kill(worker.proc.pid, signal.SIGCONT)
        got = [float(line) for f in futures for line in f.result(timeout=30).output.split()]
        assert np.array_equal(got, sklearn_predict(trained_model(12, 0), ROWS))
    finally:
        os.kill(worker.proc.pid, signal.SIGCONT)
        pool.close()


def test_two_workers_answer_every_unit_in_order():
    with _pool(2) as pool:
        futures = [pool.submit(unit) for unit in UNITS * 4]
        got = [float(line) for f in futures for line in f.result(timeout=30).output.split()]
    assert np.array_equal(got, np.tile(sklearn_predict(trained_model(12, 0), ROWS), 4))


def test_a_worker_that_dies_fails_every_unit_sent_or_queued():
    pool = _pool(1)
    worker = pool._workers[0]
    try:
        # GIVEN a stopped worker holding two units, three more queued; WHEN it is killed
        os.kill(worker.proc.pid, signal.SIGSTOP)
        futures = [pool.submit(unit) for unit in UNITS]
        _until(lambda: pool._queue.qsize() == len(UNITS) - 2)
        os.kill(worker.proc.pid, signal.SIGKILL)
        # THEN every unit fails with the worker's exit, none waits
        for future in futures:
            with pytest.raises(WorkerFailed, match=r"stopped answering \(exit code -9\)"):
                future.result(timeout=30)
    finally:
        pool.close(abort=True)
