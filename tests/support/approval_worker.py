"""A reconcile in its own process, to be killed: `python -m tests.support.approval_worker SPEC`.

SPEC (JSON) is a DeployEnv's worker_spec() plus "pause" (seconds). The worker builds the reconciler,
prints "ready", then reconciles with a hook at every step boundary of the deploy transaction that
prints the step and sleeps `pause`, so a SIGKILL sent at a random instant lands inside every step
(tests/contract/test_deploy_faults.py).
"""

from __future__ import annotations

import json
import sys
import time

from tests.support.deploy_env import reconciler_from_spec


def main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    reconciler = reconciler_from_spec(spec)

    def hook(step: str, target: str) -> None:
        print(f"step {step}", flush=True)
        time.sleep(spec["pause"])

    reconciler.transaction.hook = hook
    print("ready", flush=True)
    report = reconciler.reconcile(trigger="approval worker")
    print(json.dumps(report.to_dict()), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
