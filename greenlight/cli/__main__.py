"""`python -m greenlight.cli`: the same as the `greenlight` console script."""

from greenlight.cli.main import run

run()
