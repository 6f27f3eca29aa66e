"""The local serverless endpoint: SageMaker's container protocol over HTTP, with cold start,
idle drop and hot swap of model versions (`greenlight endpoint serve`, `greenlight invoke`).

    sources.py  a fixed model (--model PATH), model.tar.gz unpacking
    deployed.py the deployed version of a group (what `endpoint serve` follows), and who serves it
    target.py   the endpoint target's local adapter (deploy, smoke test, restore)
    loader.py   import a version's code/inference.py and run model_fn
    slot.py     ModelSlot: lazy load, idle drop, load-then-swap
    server.py   GET /ping, POST /invocations on stdlib ThreadingHTTPServer
    client.py   invoke(): one POST /invocations with urllib
    aws.py      the endpoint target's AWS adapter (SageMaker Serverless Inference)

This package imports nothing: import the submodule you need, so the approval handler (which needs
only aws.py) does not load the HTTP server, and import-linter sees every import.
"""
