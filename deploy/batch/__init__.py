"""Batch Transform targets: scheduled batch predictions with the approved model, locally and on AWS.

    config.py        BatchConfig: one definition of the job's semantics and its schedule, validated
    expressions.py   EventBridge Scheduler cron()/rate() expressions: checks, next fire time
    aws_requests.py  CreateSchedule/UpdateSchedule and CreateTransformJob requests, and reading them back
    local_schedule.py  the local mirror of the schedule (JSON under GREENLIGHT_HOME), what is due
    scheduler.py     runs due local jobs in the foreground
    local_target.py  the deployment engine's batch target, local adapter: the local schedule kept on the
                     approved version, smoke-tested by a local transform job
    aws_target.py    ... AWS adapter: the EventBridge Scheduler schedule; aws_smoke.py its smoke transform job
    observed.py      pure: what a schedule runs, and the schedule a deployment switches to and back (both adapters)
    runner.py        one local job: streaming, worker processes, staged outputs, bad rows
    transform.py     one unit of lines through the model's input_fn/predict_fn/output_fn
    splitting.py, pool.py, worker.py, staging.py, jobs.py, resolve.py: the runner's parts

This package imports nothing: import the submodule you need, so the worker processes, which import
`deploy.batch.worker`, load neither pydantic nor anything else they do not use, and import-linter sees
every import.
"""
