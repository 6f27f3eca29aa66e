"""The cost model: which AWS option serves a workload for the least money, and why.

`prices` (the price list as frozen data) and `model` (each option's monthly bill) and `decision`
(break-even rates, recommendation) are pure; `loader` reads the price JSON and the benchmark
figures; `chart` draws the comparison with matplotlib (imported only when a chart is asked for).

This package imports nothing: import the submodule you need (the loader brings pydantic, about
0.25 s), and import-linter sees every import.
"""
