"""Staged outputs: nothing named .out before success; a dead job's folder is cleaned or rolled forward."""

from __future__ import annotations

import json
import os

from deploy.batch.staging import COMMIT, PREFIX, Staging, clean_stale


def _stage(output, job_id: str, files: dict[str, bytes]) -> Staging:
    staging = Staging(output, job_id)
    for relative, data in files.items():
        staging.file_for(relative).write_bytes(data)
    return staging


def test_commit_moves_every_file_into_place_and_removes_the_folder(tmp_path):
    staging = _stage(tmp_path, "job-1", {"a.csv": b"1\n", "sub/b.csv": b"2\n"})
    assert list(tmp_path.rglob("*.out")) == []  # staged files are *.partial until the job succeeds
    finals = staging.commit()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in finals) == ["a.csv.out", "sub/b.csv.out"]
    assert (tmp_path / "sub" / "b.csv.out").read_bytes() == b"2\n"
    assert not any(p.name.startswith(PREFIX) for p in tmp_path.iterdir())


def test_a_live_job_s_folder_is_left_alone_and_a_dead_one_s_removed(tmp_path):
    live = _stage(tmp_path, "live", {"a.csv": b"1\n"})
    dead = _stage(tmp_path, "dead", {"a.csv": b"partial"})
    os.close(dead._fd)  # the process holding the lock is gone: the kernel released it
    dead._fd = None
    cleaned = clean_stale([tmp_path])
    assert [(c.job_id, c.rolled_forward) for c in cleaned] == [("dead", False)]
    assert live.path.is_dir() and not dead.path.exists()
    assert list(tmp_path.rglob("*.out")) == []
    live.discard()


def test_a_job_that_died_while_moving_its_results_is_rolled_forward(tmp_path):
    dead = _stage(tmp_path, "dying", {"a.csv": b"A\n", "sub/b.csv": b"B\n"})
    (dead.path / COMMIT).write_text(json.dumps(dead._moves))
    os.replace(dead.path / "a.csv.partial", tmp_path / "a.csv.out")  # one move happened before it died
    os.close(dead._fd)
    dead._fd = None
    cleaned = clean_stale([tmp_path])
    assert [(c.job_id, c.rolled_forward) for c in cleaned] == [("dying", True)]
    assert (tmp_path / "a.csv.out").read_bytes() == b"A\n" and (tmp_path / "sub" / "b.csv.out").read_bytes() == b"B\n"
    assert not dead.path.exists()
