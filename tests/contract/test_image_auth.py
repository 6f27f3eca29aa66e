"""Registry credentials: htpasswd Basic auth on the real registry, the Bearer-token challenge, and ECR's token.

ECR: moto's HTTP server answers `ecr:GetAuthorizationToken` (a token for `AWS:<account>-auth-token`),
but moto does not serve the registry API itself. So the token-to-Authorization step is checked against
moto, and the registry side against docker-registry with an htpasswd entry for that same user and
password: the client gets its credentials from moto over HTTP and pushes to a real registry with them.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from deploy.image import BasicCredentials, EcrCredentials, RegistryClient, append_model, ecr_registry
from deploy.image.auth import basic_header, parse_challenge
from greenlight.errors import AwsError, ImageError
from tests.contract.conftest import aws_client
from tests.support.images import BASE, client, push_base, trained_models
from tests.support.registry import FaultProxy, RedirectingFront, TokenProxy, running_registry


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    return trained_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def moto_ecr_password(moto_server) -> str:
    token = aws_client("ecr", moto_server).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    assert user == "AWS"
    return password


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory, moto_ecr_password):
    users = {"greenlight": "s3cret", "AWS": moto_ecr_password}
    with running_registry(tmp_path_factory.mktemp("basic-registry"), users=users) as reg:
        yield reg


def test_basic_auth_registry(basic_registry, models, tmp_path):
    c = client(basic_registry.url, credentials=BasicCredentials("greenlight", "s3cret"))
    push_base(c, tmp_path, repo="basic")
    result = append_model(c, "basic", BASE, models["a"], "diabetes-v1")
    assert c.manifest_digest("basic", "diabetes-v1", ("application/vnd.docker.distribution.manifest.v2+json",)) \
        == result.digest
    for credentials in (None, BasicCredentials("greenlight", "wrong")):
        with pytest.raises(ImageError) as err:
            append_model(client(basic_registry.url, credentials=credentials), "basic", BASE, models["a"], "diabetes-v2")
        assert err.value.status == 401 and err.value.step == f"read manifest {BASE}"
        assert str(err.value).startswith(f"registry {basic_registry.host}, repository basic: read manifest {BASE} "
                                         "failed: HTTP 401 (UNAUTHORIZED: authentication required (credentials "
                                         "missing or refused))")


def test_bearer_token_challenge(registry_for_tokens, models, tmp_path):
    proxy = registry_for_tokens
    c = client(proxy.url, credentials=BasicCredentials(proxy.user, proxy.password))
    push_base(c, tmp_path, repo="bearer")
    result = append_model(c, "bearer", BASE, models["a"], "diabetes-v1")
    assert result.manifest_written
    # One token per scope asked (pull for reads, pull,push for writes), reused afterwards
    assert 1 <= len(proxy.issued) <= 2, proxy.issued
    assert all("repository:bearer:pull,push" in t for t in proxy.issued)
    # Without credentials, the token server refuses: one line naming the token step
    with pytest.raises(ImageError, match=rf"read manifest {BASE}: get a token from {proxy.url}/token failed: HTTP 401"):
        append_model(client(proxy.url), "bearer", BASE, models["a"], "diabetes-v2")


@pytest.fixture
def registry_for_tokens(tmp_path):
    with running_registry(tmp_path / "registry") as reg, TokenProxy(reg.url) as proxy:
        yield proxy


def test_blob_redirects_drop_the_authorization_header(tmp_path, models):
    # GIVEN a registry shaped like ECR: Basic auth, blob reads redirected to a storage host (S3 there)
    with running_registry(tmp_path / "registry") as reg, FaultProxy(reg.url) as storage, \
            RedirectingFront(reg.url, storage_url="") as front:
        front.storage_url = storage.url
        c = client(front.url, credentials=BasicCredentials(front.user, front.password))
        push_base(c, tmp_path, repo="redirect")
        result = append_model(c, "redirect", BASE, models["a"], "diabetes-v1")
        # WHEN blobs are read THEN the storage host never sees our credentials, and the bytes check out
        config = c.blob("redirect", result.config_digest)
        assert c.download_blob("redirect", result.layer_digest, tmp_path / "layer") > 0 and config
        assert storage.seen and all(a is None for a in storage.authorizations)
        # AND a HEAD answered with a redirect counts as "present", without following it
        assert c.blob_exists("redirect", result.layer_digest)
        assert ("HEAD", f"/v2/redirect/blobs/{result.layer_digest}", 307) in front.seen
        assert all(m == "GET" for m, _, _ in storage.seen)
        assert not c.blob_exists("redirect", "sha256:" + "0" * 64)


def test_ecr_token_becomes_the_basic_authorization_header(moto_endpoint):
    ecr = aws_client("ecr", moto_endpoint)
    answer = ecr.get_authorization_token()["authorizationData"][0]
    credentials = EcrCredentials(ecr)
    assert basic_header(*credentials.basic()) == f"Basic {answer['authorizationToken']}"
    assert credentials.endpoint() == answer["proxyEndpoint"] == "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
    # ecr_registry takes the registry URL from the same answer (no registry request is made here)
    registry = ecr_registry(ecr)
    assert registry.url == answer["proxyEndpoint"] and registry.name == "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_ecr_token_is_kept_until_shortly_before_it_expires(moto_endpoint):
    # moto's token says it expires on 2015-01-01; a clock before that date sees it as fresh
    ecr = aws_client("ecr", moto_endpoint)
    now = [datetime(2014, 12, 31, 23, 0, tzinfo=UTC).timestamp()]
    credentials = EcrCredentials(ecr, clock=lambda: now[0])
    first = credentials.basic()
    credentials.basic()
    assert credentials.fetches == 1
    now[0] = datetime(2014, 12, 31, 23, 56, tzinfo=UTC).timestamp()  # within five minutes of expiry
    assert credentials.basic() == first and credentials.fetches == 2
    credentials.basic(refresh=True)  # what the client asks after a 401 from ECR
    assert credentials.fetches == 3


def test_ecr_credentials_push_to_a_registry_that_checks_them(moto_endpoint, basic_registry, models, tmp_path):
    # GIVEN credentials from moto's GetAuthorizationToken, and a registry whose htpasswd holds AWS:<that password>
    ecr = aws_client("ecr", moto_endpoint)
    c = RegistryClient(basic_registry.url, EcrCredentials(ecr), timeout=10, sleep=lambda _s: None)
    # WHEN the base is pushed and a model appended THEN every request carried the ECR token, accepted
    push_base(c, tmp_path, repo="ecr")
    assert append_model(c, "ecr", BASE, models["a"], "diabetes-v1").manifest_written
    assert c.credentials.fetches >= 1


def test_ecr_unreachable_is_an_aws_error(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ecr = aws_client("ecr", f"http://127.0.0.1:{port}")
    with pytest.raises(AwsError, match="AWS GetAuthorizationToken failed: Could not connect to the endpoint URL"):
        ecr_registry(ecr)


@pytest.mark.parametrize("header, expected", [
    ('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
     ("bearer", {"realm": "https://auth.example/token", "service": "registry.example",
                 "scope": "repository:a/b:pull,push"})),
    ('Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
     ("basic", {"realm": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/", "service": "ecr.amazonaws.com"})),
    (None, ("", {})),
])
def test_parse_challenge(header, expected):
    assert parse_challenge(header) == expected
