"""A real `greenlight batch run` killed mid-job (SIGKILL, SIGTERM) leaves no .out file and no worker
behind, and the next run completes (cleaning the dead job's staging folder).

Each job is started as a subprocess of the real CLI with SingleRecord (one request per line, so the
job lasts seconds), and interrupted once its first results are staged. Waits are bounded; no test
asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deploy.batch.jobs import JobStore
from deploy.batch.staging import PREFIX
from tests.support.batch_models import read_floats, register, sklearn_predict, trained_model, write_rows

BOUND_SECONDS = 60


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch-interrupt")
    model = trained_model(12, 0)
    home = root / "home"
    register(home, model, approve=True)
    block = root / "block.csv"
    values = write_rows(block, 2_000, seed=9)
    data = root / "in"
    data.mkdir()
    (data / "rows.csv").write_bytes(block.read_bytes() * 20)  # 40,000 rows, about 8 MB: 8 units of 1 MiB
    return {"home": home, "model": model, "input": data, "values": np.tile(values, (20, 1))}


def children(pid: int) -> list[int]:
    """Processes whose parent is pid (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").exists() and " Z " in Path(f"/proc/{pid}/stat").read_text()


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def start_job(world, output: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "GREENLIGHT_HOME": str(world["home"])}
    return subprocess.Popen([sys.executable, "-m", "greenlight.cli", "batch", "run", "--input", str(world["input"]),
                             "--output", str(output), "--batch-strategy", "SingleRecord", "--workers", "2", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def staged_results(output: Path) -> bool:
    return any(p.stat().st_size > 0 for p in output.glob(f"{PREFIX}*/*.partial"))


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_an_interrupted_job_leaves_no_out_file_and_the_next_run_completes(world, tmp_path, signum):
    output = tmp_path / "out"
    proc = start_job(world, output)
    try:
        wait_for(lambda: staged_results(output) or proc.poll() is not None, "the first staged results")
        assert proc.poll() is None, f"the job ended before it could be interrupted: {proc.stderr.read()}"
        workers = children(proc.pid)
        assert len(workers) == 2
        proc.send_signal(signum)
        proc.wait(BOUND_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wait_for(lambda: all(gone(w) for w in workers), "the workers to exit after their parent")  # none orphaned
    assert list(output.rglob("*.out")) == []
    jobs = JobStore(world["home"] / "batch" / "jobs")
    killed = jobs.list()[0]
    if signum == signal.SIGTERM:
        assert proc.returncode == 130
        assert f"interrupted: {killed.job_id} stopped; nothing was written to {output}" in proc.stderr.read()
        assert (killed.status, killed.failure_reason) == ("Stopped", "interrupted (Ctrl-C or SIGTERM)")
        assert not any(output.iterdir())  # it cleaned up after itself
    else:
        assert killed.status == "Failed" and "ended without finishing" in killed.failure_reason
        assert [p.name for p in output.iterdir()] == [f"{PREFIX}{killed.job_id}"]  # the dead job's, unlocked

    # The next run completes, removes what the dead job left, and its results are scikit-learn's.
    env = {**os.environ, "GREENLIGHT_HOME": str(world["home"])}
    rerun = subprocess.run([sys.executable, "-m", "greenlight.cli", "batch", "run", "--input", str(world["input"]),
                            "--output", str(output)], env=env, capture_output=True, text=True, timeout=BOUND_SECONDS * 3)
    assert rerun.returncode == 0, rerun.stderr
    assert [p.name for p in output.iterdir()] == ["rows.csv.out"]
    assert np.array_equal(read_floats(output / "rows.csv.out"), sklearn_predict(world["model"], world["values"]))
    if signum == signal.SIGKILL:
        assert "removed its partial outputs" in jobs.load(killed.job_id).failure_reason
