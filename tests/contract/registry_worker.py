"""A separate process for the registry concurrency tests (run as a script, not collected by pytest).

    python registry_worker.py HOME GATE NAME register COUNT
    python registry_worker.py HOME GATE NAME set-status STATUS FIRST LAST [DESCRIPTION]

It opens its own LocalModelRegistry on HOME, writes GATE/ready-NAME, waits for GATE/go so that all
workers start together, does its writes and prints the resulting versions as a JSON list.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from greenlight.registry import ApprovalStatus, LocalModelRegistry

GROUP = "greenlight-models"


def request() -> dict:
    return {
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {"Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": "s3://b/m.tar.gz"}]},
    }


def wait_for_go(gate: Path, name: str) -> None:
    (gate / f"ready-{name}").touch()
    deadline = time.monotonic() + 120
    while not (gate / "go").exists():
        if time.monotonic() > deadline:
            sys.exit(f"worker {name}: no go signal")
        time.sleep(0.002)


def main(argv: list[str]) -> int:
    home, gate, name, action, *args = argv
    registry = LocalModelRegistry(Path(home))
    wait_for_go(Path(gate), name)
    results = []
    if action == "register":
        for _ in range(int(args[0])):
            results.append(registry.create_model_package(request()))
    elif action == "set-status":
        status, first, last = ApprovalStatus(args[0]), int(args[1]), int(args[2])
        description = args[3] if len(args) > 3 else None
        for version in range(first, last + 1):
            results.append(registry.update_status(GROUP, version, status, description))
    else:
        sys.exit(f"unknown action {action!r}")
    print(json.dumps([v.to_dict() for v in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
