"""A reconcile in its own process, for the concurrency scenario: `python -m tests.support.reconcile_worker SPEC`.

SPEC (JSON) is a DeployEnv's worker_spec() plus "record" (a file) and "hold" (seconds). The worker
waits until the file "go" beside the record exists (so all workers start together), then reconciles
with the deploy transaction and the target's stop wrapped: each appends "<pid> enter <t>" / "<pid> exit <t>" lines to
the record and holds the target for "hold" seconds, so overlapping reconciles would show.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tests.support.deploy_env import reconciler_from_spec


def main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    record = Path(spec["record"])
    reconciler = reconciler_from_spec(spec)
    target = reconciler.targets[0]

    def wrap(method):
        def wrapped(*args, **kwargs):
            with open(record, "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()} enter {time.time()}\n")
            time.sleep(spec["hold"])
            try:
                return method(*args, **kwargs)
            finally:
                with open(record, "a", encoding="utf-8") as fh:
                    fh.write(f"{os.getpid()} exit {time.time()}\n")
        return wrapped

    transaction = reconciler.transaction
    transaction.deploy, target.stop = wrap(transaction.deploy), wrap(target.stop)
    go = record.with_name("go")
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.01)
    report = reconciler.reconcile(trigger=f"worker {os.getpid()}")
    print(json.dumps(report.to_dict()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
