"""The `greenlight` command line: flags in, services from the composition root, output out.

    main.py      the Typer app, logging set-up and the error edge (one line per failure)
    options.py   options shared by several commands (--target, --region, --group, --json)
    run.py       greenlight run, greenlight executions
    pipeline.py  greenlight pipeline definition|upsert|start
    models.py    greenlight models list|show|approve|reject
    endpoint.py  greenlight endpoint serve, greenlight invoke
    cost.py      greenlight cost

Everything a command needs (GREENLIGHT_HOME, the artifact store, the registry, boto3 clients) comes
from `greenlight.workspace.Workspace`; heavy imports stay inside the commands so `--help` is fast.
"""

from greenlight.cli.main import app, main, run

__all__ = ["app", "main", "run"]
