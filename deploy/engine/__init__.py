"""The deployment engine: registry state -> deployed state, level-triggered (ARCHITECTURE.md, "Deployment engine").

    model.py        pure: the desired version, the plan per target (Action, Observed, Release, TargetPlan)
    protocol.py     DeployTarget: observe and the primitives of a deployment every target adapter implements
    transaction.py  the deploy transaction, once: intent, fetch, stage beside, probe, switch, confirm,
                    undo on any failure; the recovery of a half-done one
    traffic.py      pure: progressive delivery's policy (canary, linear), steps and the rollback rule
    retention.py    pure: the one retention rule (`retained`) every target's prune applies
    faults.py       any fault inside a target as one line (OS errors with their path and mount point)
    smoke.py        the smoke-test data recorded at training time, compared bit for bit
    reconciler.py   Reconciler: under the group's lock, recover, observe, plan, apply per target (isolated); Report
    events.py       pure: which EventBridge events the approval handler acts on
    local_state.py  the local lock, status file and intent records under GREENLIGHT_HOME/deployments/<group>/;
                    durable atomic JSON writes, defensive reads
    aws_state.py    the DynamoDB lease, status store and intent records
"""
