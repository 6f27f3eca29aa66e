"""The deployment engine: registry state -> deployed state, level-triggered (ARCHITECTURE.md, "Deployment engine").

    model.py        pure: the desired version, the plan per target (Action, Observed, Release, TargetPlan)
    protocol.py     DeployTarget, the interface every target adapter implements
    smoke.py        the smoke-test data recorded at training time, compared bit for bit
    reconciler.py   Reconciler: under the group's lock, observe, plan, apply; Report
    events.py       pure: which EventBridge events the approval handler acts on
    local_state.py  the local lock and status file under GREENLIGHT_HOME/deployments/<group>/
    aws_state.py    the DynamoDB lease and status store
"""
