"""The drift report: one PNG per drifting column (baseline vs live shares over the baseline's bins), an HTML
page linking them with every column's figures, and report.json with everything the verdicts rest on.

    write_report(result, Path("drift-report"))   # -> the index.html path

matplotlib is imported here only, and this module only by `greenlight monitor --report` and
`greenlight.api.monitor(report=...)`; the scheduled monitor's package never imports it.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from greenlight.errors import DataError
from greenlight.monitor.compare import ColumnDrift, VersionDrift
from greenlight.monitor.service import MonitorResult

__all__ = ["plot_column", "write_report"]

BASELINE_COLOUR, LIVE_COLOUR = "#2980b9", "#e67e22"


def _file_name(version: int, column: str) -> str:
    return f"v{version}-{re.sub(r'[^A-Za-z0-9_.-]', '_', column)}.png"


def _shares(counts) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def plot_column(column: ColumnDrift, version: int, path: Path) -> Path:
    """Baseline and live shares per bin of one column, side by side, as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = range(len(column.labels))
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    try:
        ax.bar([p - 0.2 for p in positions], _shares(column.baseline_counts), width=0.4, color=BASELINE_COLOUR,
               label=f"baseline (training split, {column.baseline_rows:,} rows)")
        ax.bar([p + 0.2 for p in positions], _shares(column.live_counts), width=0.4, color=LIVE_COLOUR,
               label=f"live (model version {version}, {column.rows:,} rows)")
        ax.set_xticks(list(positions), column.labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("share of rows")
        verdict = "DRIFT" if column.drift else "no drift"
        ax.set_title(f"{column.name}: {verdict} (PSI {column.psi:.3f}, {column.test} p = {column.p_value:.2g})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, format="png")
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return path


def _row(column: ColumnDrift, image: str | None) -> str:
    cells = [column.name, column.kind, f"{column.psi:.3f}", column.test, f"{column.p_value:.3g}",
             "yes" if column.drift else "no", f"{column.rows:,}", f"{column.baseline_mean:.4g}",
             "-" if column.live_mean is None else f"{column.live_mean:.4g}", column.reason]
    tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
    link = f'<td><a href="{html.escape(image)}">plot</a></td>' if image else "<td></td>"
    return f"<tr{' class=drift' if column.drift else ''}>{tds}{link}</tr>"


def _section(version: VersionDrift, images: dict[str, str]) -> str:
    rows = "".join(_row(c, images.get(c.name)) for c in version.features)
    prediction = _row(version.prediction, images.get(version.prediction.name)) if version.prediction else ""
    head = "".join(f"<th>{h}</th>" for h in ("column", "kind", "PSI", "test", "p-value", "drift", "live rows",
                                             "baseline mean", "live mean", "why", ""))
    figures = "".join(f'<figure><img src="{html.escape(src)}" alt="{html.escape(name)}">'
                      f"<figcaption>{html.escape(name)}</figcaption></figure>" for name, src in images.items())
    window = f"{version.first:%Y-%m-%d %H:%M:%S} to {version.last:%Y-%m-%d %H:%M:%S} UTC" if version.first else ""
    return (f"<h2>Model version {version.version}: {'DRIFT' if version.drift else 'no drift'}</h2>"
            f"<p>{version.rows:,} rows in {version.records:,} captured requests ({', '.join(version.targets)}), "
            f"{html.escape(window)}</p><table><tr>{head}</tr>{rows}{prediction}</table>{figures}")


def write_report(result: MonitorResult, directory: Path) -> Path:
    """Write the report into `directory` (created); returns index.html's path. Raises: DataError."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the report directory {directory}: {exc.strerror or exc}") from exc
    sections = []
    for version in result.reported:
        images = {c.name: plot_column(c, version.version, directory / _file_name(version.version, c.name)).name
                  for c in version.drifting}
        sections.append(_section(version, images))
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:4px 8px;text-align:left}tr.drift{background:#fde2d4}img{max-width:900px}")
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>Drift: {html.escape(result.group)}</title>"
            f"<style>{style}</style></head><body><h1>Drift report for {html.escape(result.group)}</h1>"
            f"<p>Capture from {result.since:%Y-%m-%d %H:%M:%S} to {result.until:%Y-%m-%d %H:%M:%S} UTC.</p>"
            + "".join(sections) + "</body></html>\n")
    details = {"group": result.group, "since": result.since.isoformat(), "until": result.until.isoformat(),
               "drift": result.drift, "other_versions": list(result.other_versions), "unresolved": result.unresolved,
               "versions": [{"version": v.version, "rows": v.rows, "records": v.records, "targets": list(v.targets),
                             "drift": v.drift, "notes": list(v.notes), "features": [c.detail() for c in v.features],
                             "prediction": v.prediction.detail() if v.prediction else None}
                            for v in result.reported]}
    index = directory / "index.html"
    try:
        index.write_text(page, encoding="utf-8")
        (directory / "report.json").write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write the report in {directory}: {exc.strerror or exc}") from exc
    return index
