"""`pipeline start --wait` logic. moto has no ListPipelineExecutionSteps (and its executions never
run), so these tests give `wait_for_execution` a small scripted client instead; start/describe are
covered against moto's HTTP server in tests/contract/test_pipeline_aws.py."""

from __future__ import annotations

import pytest

from greenlight.errors import ExecutionFailed
from pipelines.aws import wait_for_execution


class ScriptedClient:
    """Answers DescribePipelineExecution / ListPipelineExecutionSteps from a list of snapshots."""

    def __init__(self, snapshots):
        self.snapshots = list(snapshots)
        self.current = None

    def describe_pipeline_execution(self, PipelineExecutionArn):
        self.current = self.snapshots.pop(0)
        return {"PipelineExecutionStatus": self.current[0], **({"FailureReason": self.current[2]} if len(self.current) > 2 else {})}

    def list_pipeline_execution_steps(self, PipelineExecutionArn, SortOrder, NextToken=None):
        steps = self.current[1]
        if NextToken is None and len(steps) > 1:  # exercise pagination
            return {"PipelineExecutionSteps": steps[:1], "NextToken": "page-2"}
        return {"PipelineExecutionSteps": steps[1:] if NextToken else steps}


def step(name, status, reason=None):
    return {"StepName": name, "StepStatus": status, **({"FailureReason": reason} if reason else {})}


def test_wait_reports_each_status_change_once_and_returns_on_success():
    client = ScriptedClient([
        ("Executing", [step("Preprocess", "Executing")]),
        ("Executing", [step("Preprocess", "Executing")]),
        ("Executing", [step("Preprocess", "Succeeded"), step("Train", "Executing")]),
        ("Succeeded", [step("Preprocess", "Succeeded"), step("Train", "Succeeded")]),
    ])
    seen, sleeps = [], []
    result = wait_for_execution(client, "arn", poll_seconds=7, on_step=lambda s: seen.append((s["StepName"], s["StepStatus"])),
                                sleep=sleeps.append)
    assert result.status == "Succeeded"
    assert seen == [("Preprocess", "Executing"), ("Preprocess", "Succeeded"), ("Train", "Executing"), ("Train", "Succeeded")]
    assert sleeps == [7, 7, 7]


def test_wait_raises_with_the_failing_steps_reason():
    client = ScriptedClient([
        ("Failed", [step("Preprocess", "Failed", "ClientError: preprocess: error: missing target column 'target'")]),
    ])
    with pytest.raises(ExecutionFailed, match="ended Failed: ClientError: preprocess: error: missing target column"):
        wait_for_execution(client, "arn", sleep=lambda s: None)


def test_wait_prefers_the_executions_own_reason_and_reports_stopped():
    client = ScriptedClient([("Stopped", [step("Train", "Stopped")], "Stopped by user")])
    with pytest.raises(ExecutionFailed, match="ended Stopped: Stopped by user"):
        wait_for_execution(client, "arn", sleep=lambda s: None)


def test_wait_stops_at_its_deadline_and_says_the_execution_goes_on():
    from greenlight.errors import WaitTimeout

    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

        def sleep(self, seconds):
            self.now += seconds

    clock = Clock()
    client = ScriptedClient([("Executing", [step("Preprocess", "Executing")])] * 10)
    with pytest.raises(WaitTimeout, match=r"after 90 s: .* is still Executing \(Preprocess Executing\); "
                                          r"it goes on running"):
        wait_for_execution(client, "arn:x", poll_seconds=30, timeout_seconds=90, sleep=clock.sleep, clock=clock)
    assert clock.now == 90  # it never sleeps past the deadline
    assert len(client.snapshots) == 10 - 4  # polled at 0, 30, 60 and 90 s, then gave up instead of sleeping on
