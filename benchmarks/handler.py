"""The approval handler's package: its size, and its cold start (`python -m benchmarks handler`).

Size: the Lambda build (`deploy/package.py` for python3.12 x86_64, what `greenlight stack deploy`
uploads), zipped and unzipped. Cold start: a fresh `python -I -S` with only the unzipped package (built
for this interpreter) and boto3's folder on sys.path imports `deploy.handler` and handles the canned
approval event against moto's HTTP server (a full reconcile: registry read, DynamoDB lease, the endpoint
deployed and smoke-tested, status saved): wall time and peak RSS (VmHWM) of the process. Baseline in the same
run: the same bare interpreter importing boto3 and creating a client. Median of ROUNDS; each round
starts from a fresh moto state.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

from benchmarks.report import write_section

ROUNDS = 5
COMMAND = "python -m benchmarks handler"
PEAK = "\nprint('VmHWM', open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
BASELINE = "import boto3\nboto3.client('dynamodb', region_name='us-east-1')\n" + PEAK
RUN = r"""
import json, sys, types
import deploy.handler
event = json.loads(sys.argv[1])
arn = "arn:aws:lambda:us-east-1:123456789012:function:a"
context = types.SimpleNamespace(aws_request_id="bench", invoked_function_arn=arn)
result = deploy.handler.lambda_handler(event, context)
assert result["status"] == "reconciled" and result["ok"], result
""" + PEAK


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process; the peak is the child's own VmHWM (the
    high-water mark of its memory after exec; rusage would count the forked copy of this process)."""
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{command[-1][:60]}... failed:\n{proc.stderr}")
    peak = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("VmHWM ")]
    return wall, int(peak[-1]) / 1024


def _unzipped(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def _reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=30).close()


def _approved(url: str) -> tuple[dict, dict[str, str]]:
    """v1 registered and Approved in moto, with its smoke data and the state table; (event, environment)."""
    from tests.contract.conftest import aws_client
    from tests.contract.test_endpoint_aws_handler import GROUP, SMOKE, lambda_environment
    from tests.support.deploy_env import canned_event
    from tests.support.deploy_env_aws import ACCOUNT, BUCKET, REGION, create_state_table
    from tests.support.moto_sagemaker import FAKE

    from deploy.engine.smoke import SMOKE_KEY
    from greenlight.registry import ApprovalStatus, SageMakerModelRegistry

    _reset(url)
    FAKE.reset()
    aws_client("s3", url).create_bucket(Bucket=BUCKET)
    aws_client("s3", url).put_object(Bucket=BUCKET, Key="v1/smoke.json", Body=json.dumps(SMOKE).encode())
    create_state_table(aws_client("dynamodb", url))
    registry = SageMakerModelRegistry(aws_client("sagemaker", url))
    v1 = registry.create_model_package({
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {"Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": f"s3://{BUCKET}/m.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"],
                                   "SupportedResponseMIMETypes": ["application/json"]},
        "CustomerMetadataProperties": {SMOKE_KEY: f"s3://{BUCKET}/v1/smoke.json"}})
    registry.update_status(GROUP, v1.version, ApprovalStatus.APPROVED)
    FAKE.answer(v1.arn, json.dumps({"predictions": SMOKE["predictions"]}))
    return canned_event(GROUP, v1.version, "Approved", v1.arn, ACCOUNT, REGION), lambda_environment(url)


def main() -> None:
    from moto.server import ThreadedMotoServer

    from deploy.package import build_handler_package
    from tests.support import moto_cloudformation
    from tests.support.handler_package import clean_handler, isolated_command
    from tests.support.moto_sagemaker import install

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = Path(os.environ.get("GREENLIGHT_HOME", ".greenlight")) / "stack" / "cache"
        lambda_build = build_handler_package(work / "lambda", "3.12", "x86_64", cache=cache)
        unzipped = _unzipped(lambda_build.path)
        handler = clean_handler(work / "local", cache=cache)
        install()
        moto_cloudformation.install()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            cold, bare = [], []
            for _ in range(ROUNDS):
                event, env = _approved(url)
                cold.append(_timed(isolated_command(handler, RUN, json.dumps(event)), env))
                bare.append(_timed(isolated_command(None, BASELINE, runtime=handler.runtime), env))
        finally:
            server.stop()
    wall, rss = statistics.median(w for w, _ in cold), statistics.median(r for _, r in cold)
    base_wall, base_rss = statistics.median(w for w, _ in bare), statistics.median(r for _, r in bare)
    figures = {"zip_bytes": lambda_build.bytes, "unzipped_bytes": unzipped,
               "files": lambda_build.files, "cold_start_s": round(wall, 3), "cold_start_rss_mb": round(rss, 1),
               "baseline_s": round(base_wall, 3), "baseline_rss_mb": round(base_rss, 1), "rounds": ROUNDS}
    size = (f"{lambda_build.bytes / 1e6:.2f} MB / {figures['unzipped_bytes'] / 1e6:.2f} MB "
            f"({lambda_build.files} files)")
    markdown = f"""## Approval handler package and cold start

| what | handler | baseline: bare interpreter, `import boto3` + a client | ratio |
|---|---|---|---|
| Lambda package (python3.12 x86_64), zipped / unzipped | {size} | boto3 comes with the runtime | |
| Cold start: fresh process, import + first approval handled against moto, wall (median of {ROUNDS}) \
| {wall:.3f} s | {base_wall:.3f} s | {wall / base_wall:.2f}x |
| Peak RSS of that process | {rss:.1f} MB | {base_rss:.1f} MB | {rss / base_rss:.2f}x |

The handler runs from a clean directory (`python -I -S`, only the unzipped package, built for this
interpreter, and boto3's folder on sys.path). The first event is a whole reconcile against moto's HTTP
server on loopback: registry read, DynamoDB lease taken and released, SageMaker model, endpoint config and
endpoint created, the smoke test through InvokeEndpoint, the status saved; AWS's own latencies are not
in it. Lambda's own init (runtime start, downloading the zip) is not either."""
    write_section("handler", markdown, figures, COMMAND)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
