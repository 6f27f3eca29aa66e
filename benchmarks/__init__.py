"""Benchmarks behind `make bench`. Each module measures against a baseline in the same run and
writes its own section of BENCHMARKS.md (between `<!-- bench:NAME -->` markers) plus its raw
figures under its name in `benchmarks/results.json`."""
