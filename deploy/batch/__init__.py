"""Batch Transform targets: scheduled batch predictions with the approved model, locally and on AWS.

    config.py        BatchConfig: one definition of the job's semantics and its schedule, validated
    expressions.py   EventBridge Scheduler cron()/rate() expressions: checks, next fire time
    aws_requests.py  CreateSchedule/UpdateSchedule and CreateTransformJob requests, and reading them back
    aws.py           create/get/update a schedule through an injected boto3 scheduler client
    local_schedule.py  the local mirror of the schedule (JSON under GREENLIGHT_HOME), what is due
    scheduler.py     runs due local jobs in the foreground
    runner.py        one local job: streaming, worker processes, staged outputs, bad rows
    transform.py     one unit of lines through the model's input_fn/predict_fn/output_fn
    splitting.py, pool.py, worker.py, staging.py, jobs.py, resolve.py: the runner's parts

Names are imported lazily (`from deploy.batch import BatchConfig` works), so the worker processes,
which import `deploy.batch.worker`, load neither pydantic nor anything else they do not use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BatchConfig": "config", "BatchStrategy": "config", "JoinSource": "config", "parse_batch_config": "config",
    "config_error": "config",
    "CronExpression": "expressions", "RateExpression": "expressions", "ScheduleExpressionError": "expressions",
    "next_fire_time": "expressions", "parse_schedule_expression": "expressions",
    "ModelRef": "aws_requests", "ScheduleInputError": "aws_requests", "TRANSFORM_TARGET_ARN": "aws_requests",
    "model_from_schedule": "aws_requests", "model_from_transform_request": "aws_requests",
    "schedule_request": "aws_requests", "substitute_context": "aws_requests",
    "transform_job_input": "aws_requests", "update_request_from": "aws_requests",
    "create_schedule": "aws", "get_schedule": "aws", "update_schedule": "aws",
    "put_local_schedule": "local_schedule", "read_local_schedule": "local_schedule",
    "enable_local_schedule": "local_schedule", "disable_local_schedule": "local_schedule",
    "list_local_schedules": "local_schedule",
    "run_due": "scheduler",
    "BatchJobFailed": "runner", "JobObserver": "runner", "JobSpec": "runner", "run_job": "runner",
    "JobRecord": "jobs", "JobStatus": "jobs", "JobStore": "jobs",
    "deployed_version": "resolve", "local_location": "resolve", "model_dir_for": "resolve",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'deploy.batch' has no attribute {name!r}")
    return getattr(importlib.import_module(f"deploy.batch.{module}"), name)
