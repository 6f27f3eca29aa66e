"""`greenlight stack project` on moto's server, and the seed code a new project starts from.

The portfolio stack (deploy/portfolio.yaml) is created in its two steps (the assets bucket and launch role,
then the product once its template is uploaded); the product carries `sagemaker:studio-visibility=true` and
the template the product points at is deploy/project.yaml with SeedObject defaulting to the uploaded zip of
this checkout. moto has no launch constraints or portfolio associations: its CloudFormation records them
(tests/support/moto_cloudformation.py, SERVICE_CATALOG_LINKS), and this test reads what was asked for.

The seed's custom resource runs a Lambda, which moto cannot run without Docker: its inline code (the
SeedFunction's ZipFile in deploy/project.yaml) is run here against moto's S3 and a local HTTP server that
stands in for CloudFormation's pre-signed ResponseURL.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import threading
import urllib.request
import zipfile
from typing import Any

import pytest

from tests.contract.conftest import REGION, aws_client
from tests.support.moto_cloudformation import SERVICE_CATALOG_LINKS
from tests.support.templates import PROJECT, load


def _reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def world(moto_server, tmp_path_factory):
    _reset(moto_server)
    SERVICE_CATALOG_LINKS.clear()
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_MAX_ATTEMPTS": "1",
           "AWS_EC2_METADATA_DISABLED": "true", "GREENLIGHT_HOME": str(tmp_path_factory.mktemp("home"))}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "GREENLIGHT_CONFIG"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        yield moto_server


def _cli(*argv: str) -> tuple[int, str]:
    from greenlight.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_stack_project_registers_the_studio_visible_product_with_its_seed(world):
    code, text = _cli("stack", "project", "--poll-seconds", "0")
    assert code == 0, text
    outputs = {o["OutputKey"]: o["OutputValue"] for o in aws_client("cloudformation", world).describe_stacks(
        StackName="greenlight-portfolio")["Stacks"][0]["Outputs"]}
    bucket, product_id = outputs["AssetsBucket"], outputs["ProductId"]
    summary = aws_client("servicecatalog", world).describe_product(Id=product_id)["ProductViewSummary"]
    assert summary["Name"] == "Greenlight"
    # (moto's DescribeProduct shows no tags and it has no DescribeProductAsAdmin: read its backend, in this process)
    from moto.servicecatalog.models import servicecatalog_backends

    product = servicecatalog_backends["123456789012"][REGION].products[product_id]
    assert {"Key": "sagemaker:studio-visibility", "Value": "true"} in product.tags
    url = product.provisioning_artifact_parameters["Info"]["LoadTemplateFromURL"]
    # the template the product was given: project.yaml with the uploaded seed as SeedObject's default
    s3 = aws_client("s3", world)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    [seed_key] = [k for k in keys if k.startswith("seed/greenlight-") and k.endswith(".zip")]
    [template_key] = [k for k in keys if k.startswith("templates/project-")]
    assert url == f"https://{bucket}.s3.{REGION}.amazonaws.com/{template_key}"
    template = s3.get_object(Bucket=bucket, Key=template_key)["Body"].read().decode()
    assert f'Default: "s3://{bucket}/{seed_key}"' in template
    assert template.replace(f'"s3://{bucket}/{seed_key}"', '""') == PROJECT.read_text()
    seed = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=seed_key)["Body"].read()))
    names = set(seed.namelist())
    assert {"buildspec.yml", "setup.py", "deploy/project.yaml", "src/train.py"} <= names
    assert not [n for n in names if n.startswith((".venv/", ".git/")) or "__pycache__" in n]
    # what moto cannot do itself, asked for: the launch constraint with the launch role, the Studio users
    links = {t.rsplit("::", 1)[-1]: p for t, p in SERVICE_CATALOG_LINKS}
    assert links["LaunchRoleConstraint"]["RoleArn"] == outputs["LaunchRoleArn"]
    assert links["LaunchRoleConstraint"]["ProductId"] == product_id
    assert links["PortfolioProductAssociation"] == {"PortfolioId": outputs["PortfolioId"], "ProductId": product_id}
    assert links["PortfolioPrincipalAssociation"]["PrincipalType"] == "IAM_PATTERN"
    assert "create-project" in text and product_id in text
    # again, with nothing new: the same seed and template, no changes
    code, again = _cli("stack", "project", "--poll-seconds", "0")
    assert code == 0 and "already in" in again and "greenlight-portfolio: no changes" in again, again


# -- the seed custom resource's code ------------------------------------------------------------------


@contextlib.contextmanager
def _response_url():
    """A local stand-in for CloudFormation's pre-signed response URL: records each PUT body."""
    answers: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_PUT(self) -> None:
            answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/response", answers
    finally:
        server.shutdown()
        server.server_close()


def _seed_handler():
    code = load(PROJECT)["Resources"]["SeedFunction"]["Properties"]["Code"]["ZipFile"]
    namespace: dict[str, Any] = {}
    exec(compile(code, "project.yaml:SeedFunction", "exec"), namespace)  # the Lambda's own index.py
    return namespace["handler"]


def _event(kind: str, url: str, source: str, bucket: str) -> dict[str, Any]:
    return {"RequestType": kind, "ResponseURL": url, "StackId": "arn:aws:cloudformation:us-east-1:1:stack/s/0",
            "RequestId": "r-1", "LogicalResourceId": "SeedSource", "ResourceType": "Custom::SeedSource",
            "ResourceProperties": {"ServiceToken": "arn", "Source": source, "Bucket": bucket,
                                   "Key": "source/greenlight.zip"}}


def test_the_seed_is_copied_once_when_the_project_is_created(world):
    s3 = aws_client("s3", world)
    for bucket in ("seed-bucket", "project-artifacts"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="seed-bucket", Key="seed/greenlight-0123.zip", Body=b"seed code")
    handler = _seed_handler()
    with _response_url() as (url, answers):
        handler(_event("Create", url, "s3://seed-bucket/seed/greenlight-0123.zip", "project-artifacts"), None)
        assert s3.get_object(Bucket="project-artifacts", Key="source/greenlight.zip")["Body"].read() == b"seed code"
        # the project's own code is never overwritten by a stack update, and a delete leaves it
        s3.put_object(Bucket="project-artifacts", Key="source/greenlight.zip", Body=b"the team's code")
        handler(_event("Update", url, "s3://seed-bucket/seed/greenlight-0123.zip", "project-artifacts"), None)
        handler(_event("Delete", url, "s3://seed-bucket/seed/greenlight-0123.zip", "project-artifacts"), None)
        assert s3.get_object(Bucket="project-artifacts", Key="source/greenlight.zip")["Body"].read() == \
            b"the team's code"
        # a seed that is not there fails the resource with the reason, instead of leaving CloudFormation waiting
        handler(_event("Create", url, "s3://seed-bucket/seed/missing.zip", "project-artifacts"), None)
    assert [a["Status"] for a in answers] == ["SUCCESS", "SUCCESS", "SUCCESS", "FAILED"]
    assert answers[0]["Data"] == {"Key": "source/greenlight.zip"} and "copied s3://seed-bucket" in answers[0]["Reason"]
    assert "NoSuchKey" in answers[3]["Reason"] or "Not Found" in answers[3]["Reason"], answers[3]
    assert {a["PhysicalResourceId"] for a in answers} == {"seed"}
