"""`python -m benchmarks [NAME ...]`: run every benchmark (or the named ones) in turn."""

from __future__ import annotations

import importlib
import sys

# Modules in benchmarks/ with a `main()`; each writes its own BENCHMARKS.md section.
ALL = ("local_run", "serving", "image", "approval", "handler", "batch", "capture", "rollout")


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(ALL)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== benchmark {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
