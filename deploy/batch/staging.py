"""Atomic outputs for a local batch job: results are staged, then moved into place only on success.

A job writes into `<output>/.greenlight-staging-<job id>/` (same filesystem, so moving is a rename),
naming each file `<relative path>.partial`: no `.out` file exists anywhere until the job succeeds.
The job holds an exclusive `flock` on the folder's `.lock` for its whole life; the kernel releases it
when the process ends, however it ends (SIGKILL included). To succeed, the job writes `COMMIT` (the
list of moves) and then renames every file to `<output>/<relative path>.out`.

`clean_stale` runs at the start of every job: a staging folder whose lock can be taken belongs to a
dead job. Without `COMMIT` its partial files are deleted; with `COMMIT` the job had finished its work,
so its remaining moves are completed (rolled forward) rather than lost. The folder is created under
a temporary name and renamed once locked, so a cleaner never sees a staging folder whose lock is not
yet held.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PREFIX", "Stale", "Staging", "clean_stale"]

logger = logging.getLogger(__name__)

PREFIX = ".greenlight-staging-"
CREATING = ".greenlight-creating-"
LOCK, COMMIT, PARTIAL = ".lock", "COMMIT", ".partial"


@dataclass(frozen=True)
class Stale:
    """A dead job's staging folder that was cleaned: its job id and whether its outputs were completed."""

    job_id: str
    path: Path
    rolled_forward: bool


class Staging:
    """One job's staging folder under `output`, locked for the life of this object."""

    def __init__(self, output: Path, job_id: str):
        self.output = Path(output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.path = self.output / f"{PREFIX}{job_id}"
        tmp = Path(tempfile.mkdtemp(dir=self.output, prefix=CREATING))
        fd = os.open(tmp / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
        self._fd: int | None = fd  # None once discarded
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(tmp, self.path)
        self._moves: list[tuple[str, str]] = []

    def file_for(self, relative: str) -> Path:
        """Where the output of input file `relative` is staged (parents created)."""
        path = self.path / (relative + PARTIAL)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._moves.append((relative + PARTIAL, relative + ".out"))
        return path

    def commit(self) -> list[Path]:
        """Move every staged file to `<output>/<relative>.out` (COMMIT first); returns the final paths."""
        marker = self.path / COMMIT
        marker.write_text(json.dumps(self._moves), encoding="utf-8")
        finals = _move_all(self.path, self.output, self._moves)
        self.discard()
        return finals

    def discard(self) -> None:
        """Delete the staging folder and release the lock (idempotent)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _move_all(staging: Path, output: Path, moves: list[tuple[str, str]]) -> list[Path]:
    finals = []
    for staged, final in moves:
        source, target = staging / staged, output / final
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.exists():
            os.replace(source, target)
        finals.append(target)
    return finals


def clean_stale(folders: list[Path]) -> list[Stale]:
    """Clean the staging folders of dead jobs found directly under each of `folders` (see module doc)."""
    cleaned = []
    for folder in folders:
        try:
            candidates = sorted([*Path(folder).glob(f"{PREFIX}*"), *Path(folder).glob(f"{CREATING}*")])
        except OSError:
            continue
        for path in candidates:
            stale = _clean_one(path)
            if stale is not None:
                cleaned.append(stale)
    return cleaned


def _clean_one(path: Path) -> Stale | None:
    try:
        fd = os.open(path / LOCK, os.O_RDWR)
    except OSError:  # being removed; or a job died before locking the folder it was creating
        if path.name.startswith(CREATING) and _age_seconds(path) > 60:
            shutil.rmtree(path, ignore_errors=True)
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # its job is alive
        job_id = path.name[len(PREFIX):] if path.name.startswith(PREFIX) else "(not started)"
        marker = path / COMMIT
        rolled = marker.exists()
        if rolled:
            moves = [tuple(m) for m in json.loads(marker.read_text(encoding="utf-8"))]
            _move_all(path, path.parent, moves)
            logger.warning("completed the outputs of batch job %s, whose process died while moving them", job_id)
        else:
            logger.warning("removed the partial outputs of batch job %s, whose process ended without finishing",
                           job_id)
        shutil.rmtree(path, ignore_errors=True)
        return Stale(job_id, path, rolled)
    finally:
        os.close(fd)


def _age_seconds(path: Path) -> float:
    import time

    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0
