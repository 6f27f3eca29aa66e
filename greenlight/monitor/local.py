"""The local capture files: where local serving writes capture records, and reading them back.

    GREENLIGHT_HOME/capture/<group>/endpoint.jsonl   the local endpoint (`greenlight endpoint serve`)
    GREENLIGHT_HOME/capture/<group>/lambda.jsonl     the local Lambda front (`greenlight lambda serve`)
    GREENLIGHT_HOME/capture/<group>/batch.jsonl      the local batch runner's workers

A stage's targets (issue 21) write under their stage's key instead: GREENLIGHT_HOME/capture/<group>-<stage>/.

A local serving command calls `enable_capture(home, group)` before it serves: it sets GREENLIGHT_CAPTURE
to that directory for the process (and the batch workers it starts), unless GREENLIGHT_CAPTURE is set
already (`off` turns capture off). The serving code (src/capture.py) appends one line per sampled request
to its target's file. The files grow until removed; removing them is safe while nothing serves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, MutableMapping
from datetime import datetime
from pathlib import Path

from greenlight.monitor.records import CaptureRecord, parse_record

__all__ = ["CAPTURE_ENV", "TARGETS", "capture_dir", "enable_capture", "read_local"]

log = logging.getLogger(__name__)

CAPTURE_ENV = "GREENLIGHT_CAPTURE"  # src/capture.py reads it
TARGETS = ("endpoint", "lambda", "batch")


def capture_dir(home: Path, group: str) -> Path:
    """The directory of the group's local capture files."""
    return Path(home) / "capture" / group


def enable_capture(home: Path, group: str, environ: MutableMapping[str, str] | None = None) -> str:
    """Point this process's serving code at the group's capture directory unless GREENLIGHT_CAPTURE is set;
    returns the setting in force."""
    environ = os.environ if environ is None else environ
    if not environ.get(CAPTURE_ENV):
        environ[CAPTURE_ENV] = str(capture_dir(home, group))
    log.info("capture records go to %s", environ[CAPTURE_ENV])
    return environ[CAPTURE_ENV]


def read_local(home: Path, group: str, since: datetime, targets: Iterable[str] | None = None,
               stage: str | None = None) -> Iterator[CaptureRecord]:
    """The group's (or a stage key's) local capture records from `since` on (the targets' files; all of them by
    default), attributed to `stage` where a line names none.

    Lines that are not capture records (a damaged or half-written line) are skipped and counted in the log.
    """
    directory = capture_dir(home, group)
    for target in targets or TARGETS:
        path = directory / f"{target}.jsonl"
        if not path.is_file():
            continue
        skipped = 0
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                record = parse_record(line, target, stage)
                if record is None:
                    skipped += bool(line.strip())
                elif record.time >= since:
                    yield record
        if skipped:
            log.warning("skipped %d line(s) of %s that are not capture records", skipped, path)
