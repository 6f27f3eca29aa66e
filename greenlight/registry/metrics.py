"""The metrics files a model version's ModelMetrics names, and their numbers by dotted path.

Pure but for the `read` callable the caller passes (the local artifact store's `get_bytes`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from greenlight.errors import GreenlightError
from greenlight.registry.model import ModelVersion

__all__ = ["flatten_numbers", "metric_sources", "metric_values"]


def metric_sources(model_metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """('ModelQuality.Statistics', 's3://...') for every MetricsSource in a ModelMetrics structure."""
    sources = []
    for key, value in sorted(model_metrics.items()):
        if isinstance(value, dict):
            path = f"{prefix}{key}"
            if isinstance(value.get("S3Uri"), str):
                sources.append((path, value["S3Uri"]))
            else:
                sources.extend(metric_sources(value, path + "."))
    return sources


def flatten_numbers(data: Any, prefix: str = "") -> dict[str, float | int]:
    """{'regression_metrics.mse.value': 0.12, ...}: every number in a JSON document, by dotted path."""
    if isinstance(data, bool):
        return {}
    if isinstance(data, (int, float)):
        return {prefix or "value": data}
    out: dict[str, float | int] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten_numbers(value, f"{prefix}{key}."))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.update(flatten_numbers(value, f"{prefix}{i}."))
    return {k.rstrip("."): v for k, v in out.items()}


def metric_values(version: ModelVersion, read: Callable[[str], bytes] | None,
                  unavailable: str = "metric values are read from local storage only (--target local)"
                  ) -> list[dict[str, Any]]:
    """Each metrics file of the version: {source, uri, values (or None), note (why not)}.

    `read` maps an s3:// URI to its bytes; None means the files cannot be read here (`unavailable`).
    """
    found = []
    for source, uri in metric_sources(version.model_metrics):
        entry: dict[str, Any] = {"source": source, "uri": uri, "values": None, "note": None}
        if read is None:
            entry["note"] = unavailable
        else:
            try:
                entry["values"] = flatten_numbers(json.loads(read(uri)))
            except GreenlightError as exc:
                entry["note"] = f"evaluation file not available locally: {exc}"
            except (ValueError, UnicodeDecodeError) as exc:
                entry["note"] = f"evaluation file is not JSON: {exc}"
        found.append(entry)
    return found
