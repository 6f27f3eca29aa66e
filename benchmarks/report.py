"""Write one benchmark's section of BENCHMARKS.md and its figures in benchmarks/results.json."""

from __future__ import annotations

import json
import platform
import re
import subprocess
from datetime import datetime, UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = ROOT / "BENCHMARKS.md"
RESULTS = ROOT / "benchmarks" / "results.json"

HEADER = """# Benchmarks

Every figure here is written by `make bench` (or the one module named in its section), measured on
this project's 2-core machine, against a baseline measured in the same run. Absolute numbers move
with the machine's load; compare the ratios. Tests never assert a wall-clock time.
"""


def machine() -> str:
    try:
        cpu = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        cpu = "?"
    return f"Python {platform.python_version()}, {platform.machine()}, {cpu} cores"


def write_section(name: str, markdown: str, figures: dict, command: str) -> None:
    """Replace (or append) the section `name` and store `figures` under `name`."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (f"<!-- bench:{name} -->\n{markdown.strip()}\n\n"
            f"_Measured {stamp} on {machine()} with `{command}`._\n<!-- /bench:{name} -->")
    text = MARKDOWN.read_text(encoding="utf-8") if MARKDOWN.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip() + "\n\n" + body + "\n"
    MARKDOWN.write_text(text, encoding="utf-8")
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results[name] = {"measured_at": stamp, "command": command, **figures}
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def latest(name: str) -> dict | None:
    """The figures of the last run of benchmark `name`, or None."""
    if not RESULTS.exists():
        return None
    return json.loads(RESULTS.read_text(encoding="utf-8")).get(name)
