"""The Lambda target: a model version published as a function version, smoke-tested, then behind `live`.

    model.py        pure: prediction threads from memory, the managed environment, version descriptions,
                    which image tags retention weighs
    events.py       pure: Function URL requests as payload-2.0 events and back; the smoke event and verdict
    aws.py          AwsLambdaTarget: append the model to the base image in ECR, deploy by digest, publish,
                    invoke that version, move the alias, retention of versions and image tags
                    (fetch.py: the model from S3; invoke.py: Lambda's Invoke and the local front's)
    local.py        LocalLambdaTarget: the same steps on the local mirror (state.py: lambda.json)
    front.py        the local Function URL and Invoke API (`greenlight lambda serve`), one ModelSlot a version
    handler.py      a version's own src/lambda_function.py, imported under its own module name

Submodules are imported where they are used (this package imports nothing), so the approval handler
on AWS does not load the local front. ARCHITECTURE.md ("The Lambda target") has the design.
"""
