"""The local serverless endpoint: SageMaker's container protocol over HTTP, with cold start,
idle drop and hot swap of model versions (`greenlight endpoint serve`, `greenlight invoke`).

    sources.py  a fixed model (--model PATH), model.tar.gz unpacking
    deployed.py the deployed version of a group (what `endpoint serve` follows), and who serves it
    target.py   the endpoint target's local adapter (stage in the server's second slot, probe there, switch)
    loader.py   import a version's code/inference.py and run model_fn
    slot.py     ModelSlot: lazy load, idle drop, load-then-swap, a staged version promoted without reloading
    server.py   GET /ping, POST /invocations on stdlib ThreadingHTTPServer; the deployer's token-guarded side channel
    lifecycle.py  the HTTP handler's plumbing and the server + watcher lifecycle (shared with the Lambda front)
    client.py   the transport seam (urllib, or in memory) and invoke(): one POST /invocations
    aws.py      the endpoint target's AWS adapter (SageMaker Serverless Inference; a verification endpoint)
    aws_resources.py  the SageMaker calls the endpoint (and batch) target make
    aws_names.py  deterministic names of a group's Models and endpoint configs

This package imports nothing: import the submodule you need, so the approval handler (which needs
only aws.py) does not load the HTTP server, and import-linter sees every import.
"""
