"""`greenlight monitor`: live traffic against the training baseline of the model version that served it.

Exit codes: 0 no drift, 3 drift found (so a schedule or CI can act), 2 a usage error (bad --since, no
capture in the window, no baseline for the version), 1 any other failure.
"""

from __future__ import annotations

from pathlib import Path

import typer

from greenlight.cli.options import JSON, REGION, TARGET, echo_json, workspace

__all__ = ["DRIFT_EXIT", "monitor"]

DRIFT_EXIT = 3


def _print_table(check) -> None:
    result = check.result
    for version in result.reported:
        span = f", {version.first:%Y-%m-%d %H:%M:%S} to {version.last:%H:%M:%S} UTC" if version.first else ""
        verdict = "DRIFT" if version.drift else "no drift"
        stages = f"stage {', '.join(version.stages)}: " if version.stages else ""
        typer.echo(f"{result.group} v{version.version}: {version.rows:,} rows in {version.records:,} captured "
                   f"requests ({stages}{', '.join(version.targets)}{span}): {verdict}")
        columns = [*version.features, *((version.prediction,) if version.prediction else ())]
        width = max(len("feature"), *(len(c.name) for c in columns))
        typer.echo(f"  {'feature':<{width}}  {'PSI':>8}  {'drift':<5}  {'rows':>8}")
        for column in columns:
            typer.echo(f"  {column.name:<{width}}  {column.psi:>8.4f}  {'yes' if column.drift else 'no':<5}  "
                       f"{column.rows:>8,}")
        for note in version.notes:
            typer.echo(f"  note: {note}")


def monitor(
    since: str = typer.Option("24h", "--since", metavar="DURATION", help="How far back to read the capture: "
                              "90s, 30m, 2h, 7d, 1h30m."),
    target: str = TARGET,
    region: str | None = REGION,
    group: str | None = typer.Option(None, "--group", "-g", help="Model package group (default: the deployment "
                                                                 "configuration's)."),
    serving: list[str] = typer.Option(None, "--serving", metavar="endpoint|lambda|batch", help="Only this serving "
                                      "target's traffic (repeatable); default: all of them."),
    stage: str | None = typer.Option(None, "--stage", metavar="NAME", help="Only this stage's traffic (a "
                                     "[stages.<name>] of greenlight.toml); default: every stage's."),
    as_json: bool = JSON,
    report: Path | None = typer.Option(None, "--report", metavar="DIR", help="Write one PNG per drifting feature "
                                       "(baseline vs live), an index.html linking them and report.json into DIR."),
    all_versions: bool = typer.Option(False, "--all-versions", help="Compare every model version seen in the "
                                      "window (--json: a list, newest first); default: the newest only."),
    psi: float | None = typer.Option(None, "--psi", help="PSI at or above which a feature may drift (default "
                                     "$GREENLIGHT_MONITOR_PSI, else 0.2)."),
    p_value: float | None = typer.Option(None, "--p-value", help="The two-sample test's level (default "
                                         "$GREENLIGHT_MONITOR_P_VALUE, else 0.01)."),
    min_rows: int | None = typer.Option(None, "--min-rows", help="Live values a feature needs for a verdict "
                                        "(default $GREENLIGHT_MONITOR_MIN_ROWS, else 100)."),
) -> None:
    """Compare the captured traffic of the last --since with the training baseline of the version that served it.

    Each feature and the predictions: PSI over the baseline's bins and a two-sample test (Kolmogorov-Smirnov,
    or chi-square for a feature binned by value); a feature drifts when both say so. Locally the capture is
    GREENLIGHT_HOME/capture/<group>/ (written by `greenlight endpoint serve`, `lambda serve` and the batch
    runner); with --target aws, the serving targets' CloudWatch Logs. Exits 3 when drift is found, 0 otherwise.
    """
    from greenlight.api import monitor as check_drift

    check = check_drift(workspace(target, region), since, group, targets=serving or None, stage=stage,
                        all_versions=all_versions, report=report, psi=psi, p_value=p_value, min_rows=min_rows)
    result = check.result
    for note in check.notes:
        typer.echo(f"greenlight monitor: {note}", err=True)
    if as_json:
        echo_json(check.to_json(all_versions))
    else:
        _print_table(check)
    if result.other_versions:
        others = ", ".join(f"v{v}" for v in result.other_versions)
        typer.echo(f"greenlight monitor: the window also holds traffic of {others}; compared the newest only "
                   "(--all-versions compares each)", err=True)
    if result.unresolved:
        typer.echo(f"greenlight monitor: left out {result.unresolved} record(s) of models no version's baseline "
                   "names", err=True)
    if check.report is not None:
        typer.echo(f"greenlight monitor: report in {check.report}", err=True)
    if check.drift:
        raise typer.Exit(DRIFT_EXIT)
