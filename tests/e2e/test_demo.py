"""`make demo` end to end: the narrated lifecycle, and Ctrl-C half-way leaves no process behind.

GIVEN a fresh demo home WHEN `make demo` is interrupted (SIGINT to its process group, as a terminal's
Ctrl-C) after the servers started THEN it stops them (their pids are gone), AND the next `make demo`
completes, stating every transition (v1, v2, rolled back) and exiting 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _make_demo(home: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "GREENLIGHT_HOME"}
    return subprocess.Popen(["make", "--no-print-directory", "-C", str(ROOT), "demo", f"DEMO_HOME={home}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for practical purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_make_demo_interrupted_then_complete(tmp_path):
    home = tmp_path / "demo"
    demo = _make_demo(home)
    lines = []
    for line in demo.stdout:
        lines.append(line)
        if line.startswith("== Step 3/9"):  # the endpoint and the Lambda are running
            break
    else:
        pytest.fail("the demo ended before step 3:\n" + "".join(lines))
    pids = json.loads((home / "demo-processes.json").read_text())
    assert set(pids) == {"endpoint", "lambda"} and all(_alive(p) for p in pids.values())
    os.killpg(demo.pid, signal.SIGINT)
    rest, _ = demo.communicate(timeout=120)
    assert demo.returncode != 0, rest
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [name for name, pid in pids.items() if _alive(pid)] == [], "a demo process was left running"
    assert "stopped endpoint" in rest and "stopped lambda" in rest, rest

    demo = _make_demo(home)
    out, _ = demo.communicate(timeout=600)
    assert demo.returncode == 0, out
    for words in ("Step 9/9", "endpoint: nothing → v1", "lambda: nothing → v1", "batch: nothing → v1",
                  "endpoint: v1 → v2", "lambda: v1 → v2", "batch: v1 → v2", "endpoint: v2 → v1 (rolled back)",
                  "lambda: v2 → v1 (rolled back)", "batch: v2 → v1 (rolled back)",
                  "rolled back: every target serves v1 again", "recommended:", "Demo finished",
                  "greenlight history` shows every deployment"):
        assert words in out, f"{words!r} missing from the demo's output:\n{out}"
    pids = json.loads((home / "demo-processes.json").read_text())
    assert not any(_alive(p) for p in pids.values())


def test_a_failing_step_is_named_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    from greenlight import api
    from greenlight.cli import main

    def broken_train(*args, **kwargs):
        raise api.DataError("the training data went missing")

    monkeypatch.setattr(api, "train", broken_train)
    code = main(["demo", "--home", str(tmp_path / "demo")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "demo step 1 (train version 1 locally" in err and "the training data went missing" in err


def test_the_demo_home_is_its_own_or_refused(tmp_path):
    """demo --home: a new or empty directory is marked as the demo's; a marked one is emptied on the next run;
    a file, or a non-empty directory without the marker, is refused with nothing touched (issue 18 item 2)."""
    from greenlight.demo import MARKER, prepare_home
    from greenlight.errors import UsageError

    new = prepare_home(tmp_path / "new" / "home")
    assert sorted(p.name for p in new.iterdir()) == [MARKER]
    (new / "registry.sqlite3").write_text("an earlier demo's registry")
    assert sorted(p.name for p in prepare_home(new).iterdir()) == [MARKER]  # the demo's own: emptied
    (tmp_path / "empty").mkdir()
    assert sorted(p.name for p in prepare_home(tmp_path / "empty").iterdir()) == [MARKER]
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "registry.sqlite3").write_text("someone's registry")
    (tmp_path / "a-file").write_text("a file")
    for refused, words in ((tmp_path / "theirs", "is not empty and was not created by the demo"),
                           (tmp_path / "a-file", "is a file, not a directory")):
        with pytest.raises(UsageError, match=words):
            prepare_home(refused)
    assert (tmp_path / "theirs" / "registry.sqlite3").read_text() == "someone's registry"
    assert [p.name for p in (tmp_path / "theirs").iterdir()] == ["registry.sqlite3"]
    assert (tmp_path / "a-file").read_text() == "a file"
