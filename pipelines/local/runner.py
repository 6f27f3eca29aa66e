"""Execute a pipeline definition on this machine: what to run (the definition) apart from how.

`LocalRunner.run(definition, overrides)` checks the whole definition first (step types,
expressions, references, images, entry points, parameter values) and refuses what it cannot
honour before anything runs. It then runs steps in data-dependency order: Processing and Training
jobs in subprocess sandboxes (pipelines.local.jobs); Condition, Fail and RegisterModel steps
itself. Every transition is saved to the execution record; Ctrl-C or SIGTERM marks it Stopped.
`prepare()` starts a warm job server early (pipelines.local.warm), so the jobs' library imports
overlap with the caller's definition build.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from greenlight.errors import DefinitionError, ExecutionFailed, GreenlightError
from greenlight.store import LocalArtifactStore
from pipelines.local.executions import ExecutionRecord, ExecutionStatus, ExecutionStore, StepRecord, now_iso
from pipelines.local.expressions import (Context, check_expressions, coerce_parameters, evaluate,
                                         evaluate_condition, step_refs)
from pipelines.local.jobs import check_job, run_processing, run_training
from pipelines.local.warm import WarmStarter
from pipelines.parameters import check_ranges

__all__ = ["LocalRunner", "STEP_TYPES"]

log = logging.getLogger(__name__)
STEP_TYPES = {"Processing", "Training", "Condition", "RegisterModel", "Fail"}
StepListener = Callable[[StepRecord, float | None], None]


def _all_steps(steps: list[dict]) -> Iterator[dict]:
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            yield from _all_steps(step["Arguments"].get("IfSteps", []))
            yield from _all_steps(step["Arguments"].get("ElseSteps", []))


def _dependencies(step: dict) -> set[str]:
    scope = step["Arguments"]["Conditions"] if step["Type"] == "Condition" else step.get("Arguments", {})
    return step_refs(scope) | set(step.get("DependsOn") or []) | step_refs(step.get("PropertyFiles", []))


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class LocalRunner:
    """Runs definitions against a local artifact store and model registry."""

    def __init__(self, store: LocalArtifactStore, registry, executions: ExecutionStore,
                 on_step: StepListener = lambda step, seconds: None, starter: WarmStarter | None = None):
        self.store = store
        self.registry = registry
        self.executions = executions
        self.on_step = on_step
        self.starter = starter

    def prepare(self) -> None:
        """Start warming the job processes' libraries (in the background): call it before building the
        definition, so the imports overlap with the build; `close()` when done."""
        if self.starter is None:
            self.starter = WarmStarter()
        try:
            self.starter.start()
        except OSError as exc:  # no warm server: every job starts a fresh interpreter, as without one
            log.info("job processes will start cold: the warm job server did not start (%s)", exc)
            self.starter = None

    def close(self) -> None:
        """Stop the warm job server, if `prepare` started one."""
        if self.starter is not None:
            self.starter.close()

    def check(self, definition: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
        """Validate everything before a run; return the parameter values.

        Raises:
            DefinitionError: a step type, expression, reference, image or entry point we cannot honour.
            ParameterError: an unknown parameter, a value of the wrong type or out of its range.
        """
        params = coerce_parameters(definition.get("Parameters", []), overrides)
        check_ranges(params)
        steps = list(_all_steps(definition.get("Steps", [])))
        names = {s["Name"] for s in steps}
        if len(names) != len(steps):
            raise DefinitionError("step names are not unique")
        for step in steps:
            name, kind = step["Name"], step.get("Type")
            where = f"step {name} ({kind})"
            if kind not in STEP_TYPES:
                raise DefinitionError(f"step {name}: step type {kind!r} is not supported locally "
                                      f"(supported: {', '.join(sorted(STEP_TYPES))})")
            check_expressions(step.get("Arguments", {}), where, set(params), names)
            check_expressions(step.get("PropertyFiles", []), where, set(params), names)
            unknown = set(step.get("DependsOn") or []) - names
            if unknown:
                raise DefinitionError(f"{where}: DependsOn unknown step(s) {sorted(unknown)}")
            if kind in {"Processing", "Training"}:
                key = "AppSpecification" if kind == "Processing" else "AlgorithmSpecification"
                spec = evaluate(step["Arguments"].get(key, {}), Context(params, {}, {}, lambda s, p: None))
                check_job(name, kind, {key: spec})
        return params

    def run(self, definition: Mapping[str, Any], overrides: Mapping[str, str],
            pipeline_name: str = "greenlight-training") -> ExecutionRecord:
        """Run to the end; return the record, or raise ExecutionFailed after saving it.

        A definition JSON carries no pipeline name (SageMaker keeps it beside the definition),
        so the caller passes it.
        """
        params = self.check(definition, overrides)
        name = pipeline_name
        record = ExecutionRecord(self.executions.new_id(), name, {k: str(v) for k, v in params.items()})
        self.executions.save(record)
        execution = {
            "PipelineExecutionId": record.execution_id,
            "PipelineExecutionArn":
                f"arn:aws:sagemaker:local:000000000000:pipeline/{name}/execution/{record.execution_id}",
            "PipelineName": name, "StartDateTime": record.start, "CurrentDateTime": record.start,
        }
        properties: dict[str, dict] = {}
        by_name = {s["Name"]: s for s in _all_steps(definition["Steps"])}
        ctx = Context(params, execution, properties,
                      lambda step, pf: self._property_file(by_name, properties, step, pf))
        pending = list(definition["Steps"])
        with _sigterm_as_interrupt():
            try:
                while pending:
                    ready = [s for s in pending if _dependencies(s) <= set(properties)]
                    if not ready:
                        stuck = {s["Name"]: sorted(_dependencies(s) - set(properties)) for s in pending}
                        raise DefinitionError(f"steps cannot run, their inputs never appear: {stuck}")
                    step = ready[0]
                    pending.remove(step)
                    pending.extend(self._run_step(step, ctx, record, properties))
            except GreenlightError as exc:  # a step failed (JobFailed, DataError ...), or the registry refused
                self._finish(record, ExecutionStatus.FAILED, str(exc))
                raise ExecutionFailed(f"execution {record.execution_id} failed: {exc}") from exc
            except Exception as exc:  # a bug in Greenlight: recorded as Failed, raised with its traceback
                self._finish(record, ExecutionStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}")
                raise
            except BaseException as exc:  # Ctrl-C, SIGTERM
                self._finish(record, ExecutionStatus.STOPPED, f"stopped: {type(exc).__name__} {exc}".strip())
                raise
        self._finish(record, ExecutionStatus.SUCCEEDED, None)
        return record

    def _run_step(self, step: dict, ctx: Context, record: ExecutionRecord, properties: dict) -> list[dict]:
        """Run one step; return the steps it adds (a Condition's chosen branch)."""
        name, kind = step["Name"], step["Type"]
        job_dir = self.executions.dir_for(record.execution_id) / "jobs" / name
        log_path = self.executions.dir_for(record.execution_id) / "logs" / f"{name}.log"
        step_record = StepRecord(name, kind, log_path=str(log_path))
        started = time.monotonic()
        added: list[dict] = []
        record.steps.append(step_record)
        try:  # from the moment the step is on record: a signal anywhere below still ends it Stopped
            self.executions.save(record)
            self.on_step(step_record, None)
            args = evaluate(step.get("Arguments", {}), ctx) if kind != "Condition" else {}
            if kind == "Processing":
                properties[name], step_record.process_seconds = run_processing(
                    name, args, self.store, job_dir, Path(step_record.log_path), self.starter)
            elif kind == "Training":
                job = f"pipelines-{record.execution_id}-{name}".lower()
                properties[name], step_record.process_seconds = run_training(
                    name, args, self.store, job_dir, Path(step_record.log_path), job, self.starter)
            elif kind == "Condition":
                outcome = all(evaluate_condition(c, ctx) for c in step["Arguments"]["Conditions"])
                step_record.outcome = str(outcome)
                properties[name] = {"Outcome": outcome}
                added = step["Arguments"].get("IfSteps" if outcome else "ElseSteps", [])
                log.info("condition %s is %s; next: %s", name, outcome, [s["Name"] for s in added])
            elif kind == "RegisterModel":
                version = self.registry.create_model_package(args)
                properties[name] = {"ModelPackageArn": version.arn}
                step_record.outcome = version.arn
                record.registered = {"group": version.group, "version": version.version, "arn": version.arn,
                                     "status": str(version.status)}
            elif kind == "Fail":
                raise ExecutionFailed(f"step {name}: {args.get('ErrorMessage', 'Fail step reached')}")
        except BaseException as exc:
            ended = ExecutionStatus.FAILED if isinstance(exc, Exception) else ExecutionStatus.STOPPED
            step_record.status = ended.value
            step_record.failure_reason = str(exc)
            step_record.end = now_iso()
            self.executions.save(record)
            self.on_step(step_record, time.monotonic() - started)
            raise
        step_record.status, step_record.end = ExecutionStatus.SUCCEEDED.value, now_iso()
        self.executions.save(record)
        self.on_step(step_record, time.monotonic() - started)
        return list(added)

    def _property_file(self, by_name: dict, properties: dict, step: str, property_file: str) -> Any:
        spec = next((p for p in by_name[step].get("PropertyFiles", []) if p["PropertyFileName"] == property_file), None)
        if spec is None:
            raise DefinitionError(f"step {step} declares no property file {property_file!r}")
        outputs = properties[step]["ProcessingOutputConfig"]["Outputs"]
        base = next(o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == spec["OutputName"])
        uri = f"{base.rstrip('/')}/{spec['FilePath']}"
        return json.loads(self.store.get_bytes(uri))

    def _finish(self, record: ExecutionRecord, status: ExecutionStatus, reason: str | None) -> None:
        record.status, record.failure_reason, record.end = status.value, reason, now_iso()
        self.executions.save(record)

